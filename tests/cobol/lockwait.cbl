      * Two programs and one record: with LOCKWAIT_MODE=HOLD it locks
      * record 0002 (READ WITH LOCK), then waits for the file GO1 to
      * appear before UNLOCK, for GO2 before locking it again, for GO3
      * before COMMIT (which releases it) and for GO4 before it ends; with
      * LOCKWAIT_MODE=TRY it reads record 0002 while someone else holds it:
      * WITH LOCK (51), WITH NO LOCK (00), and through a file in LOCK MODE
      * AUTOMATIC (51), then record 0003 (00). LOAD writes the records.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. LOCKWAIT.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT MANUAL-FILE ASSIGN TO "WAITMAN"
               ORGANIZATION IS INDEXED
               ACCESS MODE IS DYNAMIC
               RECORD KEY IS MAN-ID
               LOCK MODE IS MANUAL
               FILE STATUS IS FS.
           SELECT AUTO-FILE ASSIGN TO "WAITAUTO"
               ORGANIZATION IS INDEXED
               ACCESS MODE IS DYNAMIC
               RECORD KEY IS AUTO-ID
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
           05 AUTO-ID          PIC 9(4).
           05 AUTO-TEXT        PIC X(16).
       WORKING-STORAGE SECTION.
       01  FS                  PIC XX.
       01  MODE-IN             PIC X(8).
       01  I                   PIC 9(4).
       01  GO-NAME             PIC X(8).
       01  GO-DETAILS          PIC X(16).
       01  GO-FOUND            PIC S9(9) COMP-5.
       01  TRIES               PIC 9(6).
       01  NAP                 PIC 9(18) COMP-5 VALUE 20000000.
       PROCEDURE DIVISION.
       MAIN.
           ACCEPT MODE-IN FROM ENVIRONMENT "LOCKWAIT_MODE"
           EVALUATE MODE-IN
               WHEN "LOAD" PERFORM LOAD-RECORDS
               WHEN "HOLD" PERFORM HOLD-RECORD
               WHEN OTHER PERFORM TRY-RECORD
           END-EVALUATE
           STOP RUN.
       LOAD-RECORDS.
           OPEN OUTPUT MANUAL-FILE
           PERFORM VARYING I FROM 1 BY 1 UNTIL I > 5
               MOVE I TO MAN-ID
               MOVE "LOADED" TO MAN-TEXT
               WRITE MAN-REC
           END-PERFORM
           CLOSE MANUAL-FILE
           DISPLAY "LOADED " FS.
       HOLD-RECORD.
           OPEN I-O MANUAL-FILE
           MOVE 2 TO MAN-ID
           READ MANUAL-FILE WITH LOCK
           DISPLAY "HOLD LOCKED " FS
           MOVE "GO1" TO GO-NAME PERFORM WAIT-FOR
           UNLOCK MANUAL-FILE
           DISPLAY "HOLD UNLOCKED " FS
           MOVE "GO2" TO GO-NAME PERFORM WAIT-FOR
           READ MANUAL-FILE WITH LOCK
           DISPLAY "HOLD LOCKED AGAIN " FS
           MOVE "GO3" TO GO-NAME PERFORM WAIT-FOR
           COMMIT
           DISPLAY "HOLD COMMITTED"
           MOVE "GO4" TO GO-NAME PERFORM WAIT-FOR
           CLOSE MANUAL-FILE.
       TRY-RECORD.
           OPEN I-O MANUAL-FILE AUTO-FILE
           MOVE 2 TO MAN-ID
           READ MANUAL-FILE WITH LOCK
           DISPLAY "TRY WITH LOCK " FS
           READ MANUAL-FILE WITH NO LOCK
           DISPLAY "TRY NO LOCK " MAN-REC " " FS
           MOVE 2 TO AUTO-ID
           READ AUTO-FILE
           DISPLAY "TRY AUTOMATIC " FS
           MOVE 3 TO AUTO-ID
           READ AUTO-FILE
           DISPLAY "TRY AUTOMATIC " AUTO-REC " " FS
           CLOSE MANUAL-FILE AUTO-FILE.
       WAIT-FOR.
           MOVE -1 TO GO-FOUND
           PERFORM VARYING TRIES FROM 1 BY 1
                   UNTIL GO-FOUND = 0 OR TRIES > 1000
               CALL "CBL_CHECK_FILE_EXIST" USING GO-NAME GO-DETAILS
                   RETURNING GO-FOUND
               IF GO-FOUND NOT = 0
                   CALL "CBL_GC_NANOSLEEP" USING NAP
               END-IF
           END-PERFORM.
