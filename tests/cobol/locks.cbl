      * Record locks as a program sees them alone: READ WITH LOCK, WITH
      * NO LOCK and WITH KEPT LOCK under LOCK MODE MANUAL, READs under
      * LOCK MODE AUTOMATIC, REWRITE and DELETE of a locked record, UNLOCK
      * of an open and of a closed file, and COMMIT, which releases locks.
      * Every status is printed.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. LOCKS.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT MANUAL-FILE ASSIGN TO "LOCKMAN"
               ORGANIZATION IS INDEXED
               ACCESS MODE IS DYNAMIC
               RECORD KEY IS MAN-ID
               LOCK MODE IS MANUAL
               FILE STATUS IS FS.
           SELECT AUTO-FILE ASSIGN TO "LOCKAUTO"
               ORGANIZATION IS RELATIVE
               ACCESS MODE IS DYNAMIC
               RELATIVE KEY IS AUTO-RRN
               LOCK MODE IS AUTOMATIC
               FILE STATUS IS FS.
       DATA DIVISION.
       FILE SECTION.
       FD  MANUAL-FILE.
       01  MAN-REC.
           05 MAN-ID           PIC 9(4).
           05 MAN-TEXT         PIC X(16).
       FD  AUTO-FILE.
       01  AUTO-REC.
           05 AUTO-TEXT        PIC X(20).
       WORKING-STORAGE SECTION.
       01  FS                  PIC XX.
       01  I                   PIC 9(4).
       01  AUTO-RRN            PIC 9(4).
       PROCEDURE DIVISION.
       MAIN.
           UNLOCK MANUAL-FILE
           DISPLAY "UNLOCK CLOSED                " FS
           OPEN OUTPUT MANUAL-FILE AUTO-FILE
           PERFORM VARYING I FROM 1 BY 1 UNTIL I > 5
               MOVE I TO MAN-ID
               MOVE "LOADED" TO MAN-TEXT
               WRITE MAN-REC
               MOVE I TO AUTO-RRN
               MOVE "SLOT LOADED" TO AUTO-TEXT
               WRITE AUTO-REC
           END-PERFORM
           CLOSE MANUAL-FILE AUTO-FILE
           OPEN I-O MANUAL-FILE
           MOVE 2 TO MAN-ID
           READ MANUAL-FILE WITH LOCK
           DISPLAY "READ WITH LOCK " MAN-REC " " FS
           MOVE 3 TO MAN-ID
           READ MANUAL-FILE WITH NO LOCK
           DISPLAY "READ NO LOCK   " MAN-REC " " FS
           MOVE 4 TO MAN-ID
           READ MANUAL-FILE WITH KEPT LOCK
           DISPLAY "READ KEPT LOCK " MAN-REC " " FS
           READ MANUAL-FILE NEXT WITH LOCK
           DISPLAY "NEXT WITH LOCK " MAN-REC " " FS
           MOVE "REWRITTEN" TO MAN-TEXT
           REWRITE MAN-REC
           DISPLAY "REWRITE LOCKED " MAN-REC " " FS
           UNLOCK MANUAL-FILE
           DISPLAY "UNLOCK                       " FS
           MOVE 1 TO MAN-ID
           READ MANUAL-FILE WITH LOCK
           DISPLAY "READ WITH LOCK " MAN-REC " " FS
           DELETE MANUAL-FILE
           DISPLAY "DELETE LOCKED                " FS
           MOVE 2 TO MAN-ID
           READ MANUAL-FILE WITH LOCK
           DISPLAY "READ WITH LOCK " MAN-REC " " FS
           COMMIT
           UNLOCK MANUAL-FILE
           DISPLAY "UNLOCK AFTER COMMIT          " FS
           MOVE 9 TO MAN-ID
           READ MANUAL-FILE WITH LOCK
           DISPLAY "READ MISSING WITH LOCK       " FS
           CLOSE MANUAL-FILE
           OPEN INPUT MANUAL-FILE
           MOVE 3 TO MAN-ID
           READ MANUAL-FILE WITH LOCK
           DISPLAY "INPUT WITH LOCK" MAN-REC " " FS
           CLOSE MANUAL-FILE
           OPEN I-O AUTO-FILE
           MOVE 2 TO AUTO-RRN
           READ AUTO-FILE
           DISPLAY "AUTO READ      " AUTO-REC " " FS
           READ AUTO-FILE NEXT
           DISPLAY "AUTO NEXT      " AUTO-REC " " AUTO-RRN " " FS
           MOVE "SLOT REWRITTEN" TO AUTO-TEXT
           REWRITE AUTO-REC
           DISPLAY "AUTO REWRITE   " AUTO-REC " " FS
           READ AUTO-FILE NEXT
           DISPLAY "AUTO NEXT      " AUTO-REC " " AUTO-RRN " " FS
           UNLOCK AUTO-FILE
           DISPLAY "AUTO UNLOCK                  " FS
           CLOSE AUTO-FILE
           OPEN INPUT AUTO-FILE
           PERFORM UNTIL FS NOT = "00"
               READ AUTO-FILE NEXT
               IF FS = "00"
                   DISPLAY "AUTO HOLDS     " AUTO-REC " " AUTO-RRN
               END-IF
           END-PERFORM
           CLOSE AUTO-FILE
           STOP RUN.
