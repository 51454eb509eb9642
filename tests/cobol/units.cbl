      * COMMIT and ROLLBACK. Through the bridge in commit durability a
      * ROLLBACK undoes the WRITE, REWRITE and DELETE since the last
      * COMMIT; GnuCOBOL's own handler cannot roll a file back (its
      * ROLLBACK only releases locks), so the two differ in records, never
      * in FILE STATUS.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. UNITS.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT ACCTS ASSIGN TO "ACCTS"
               ORGANIZATION IS INDEXED
               ACCESS MODE IS DYNAMIC
               RECORD KEY IS ACCT-ID
               FILE STATUS IS FS.
       DATA DIVISION.
       FILE SECTION.
       FD  ACCTS.
       01  ACCT-REC.
           05 ACCT-ID          PIC 9(4).
           05 ACCT-TEXT        PIC X(12).
       WORKING-STORAGE SECTION.
       01  FS                  PIC XX.
       PROCEDURE DIVISION.
       MAIN.
           OPEN OUTPUT ACCTS
           CLOSE ACCTS
           OPEN I-O ACCTS
           MOVE 1 TO ACCT-ID MOVE "COMMITTED" TO ACCT-TEXT
           WRITE ACCT-REC DISPLAY "WRITE 1 " FS
           MOVE 2 TO ACCT-ID MOVE "COMMITTED" TO ACCT-TEXT
           WRITE ACCT-REC DISPLAY "WRITE 2 " FS
           COMMIT
           MOVE 3 TO ACCT-ID MOVE "ROLLED BACK" TO ACCT-TEXT
           WRITE ACCT-REC DISPLAY "WRITE 3 " FS
           MOVE 1 TO ACCT-ID
           READ ACCTS DISPLAY "READ 1 " FS " " ACCT-TEXT
           MOVE "ROLLED BACK" TO ACCT-TEXT
           REWRITE ACCT-REC DISPLAY "REWRITE 1 " FS
           MOVE 2 TO ACCT-ID
           DELETE ACCTS DISPLAY "DELETE 2 " FS
           MOVE 3 TO ACCT-ID
           READ ACCTS DISPLAY "READ 3 " FS " " ACCT-TEXT
           ROLLBACK
           PERFORM SHOW-ALL
           MOVE 4 TO ACCT-ID MOVE "AT CLOSE" TO ACCT-TEXT
           WRITE ACCT-REC DISPLAY "WRITE 4 " FS
           CLOSE ACCTS
           OPEN INPUT ACCTS
           PERFORM SHOW-ALL
           CLOSE ACCTS
           STOP RUN.
       SHOW-ALL.
           MOVE 0 TO ACCT-ID
           START ACCTS KEY IS GREATER THAN ACCT-ID
           PERFORM UNTIL FS NOT = "00"
               READ ACCTS NEXT RECORD
               IF FS = "00"
                   DISPLAY "HAS " ACCT-ID " " ACCT-TEXT
               END-IF
           END-PERFORM
           DISPLAY "END " FS.
