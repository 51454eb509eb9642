      * The batch job of the COBOL benchmark. BATCH_MODE=LOAD writes
      * BATCH_RECORDS records of 100 bytes in key order; BATCH_MODE=UPDATE
      * reads them all sequentially and rewrites every tenth one;
      * BATCH_MODE=SCAN only reads them (OPEN INPUT). Each ends
      * with a line of counts and a total, so runs can be compared.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. BATCH.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT ACCOUNTS ASSIGN TO "ACCOUNTS"
               ORGANIZATION IS INDEXED
               ACCESS MODE IS SEQUENTIAL
               RECORD KEY IS ACCT-NO
               FILE STATUS IS FS.
       DATA DIVISION.
       FILE SECTION.
       FD  ACCOUNTS.
       01  ACCT-REC.
           05 ACCT-NO          PIC 9(8).
           05 ACCT-NAME        PIC X(30).
           05 ACCT-BALANCE     PIC S9(11)V99 COMP-3.
           05 ACCT-UPDATES     PIC 9(4) COMP.
           05 FILLER           PIC X(53).
       WORKING-STORAGE SECTION.
       01  FS                  PIC XX.
       01  MODE-NAME           PIC X(8).
       01  RECORD-TEXT         PIC X(12).
       01  RECORD-COUNT        PIC 9(9).
       01  I                   PIC 9(9).
       01  UPDATED             PIC 9(9) VALUE 0.
       01  TOTAL               PIC S9(15)V99 VALUE 0.
       01  SHOWN-TOTAL         PIC -(15)9.99.
       PROCEDURE DIVISION.
       MAIN.
           ACCEPT MODE-NAME FROM ENVIRONMENT "BATCH_MODE"
           ACCEPT RECORD-TEXT FROM ENVIRONMENT "BATCH_RECORDS"
           MOVE FUNCTION NUMVAL(RECORD-TEXT) TO RECORD-COUNT
           EVALUATE MODE-NAME
               WHEN "LOAD" PERFORM LOAD-ACCOUNTS
               WHEN "SCAN" PERFORM SCAN-ACCOUNTS
               WHEN OTHER PERFORM UPDATE-ACCOUNTS
           END-EVALUATE
           MOVE TOTAL TO SHOWN-TOTAL
           DISPLAY MODE-NAME " RECORDS " I " UPDATED " UPDATED
               " TOTAL " SHOWN-TOTAL
           STOP RUN.

       LOAD-ACCOUNTS.
           OPEN OUTPUT ACCOUNTS
           PERFORM VARYING I FROM 1 BY 1 UNTIL I > RECORD-COUNT
               MOVE I TO ACCT-NO
               MOVE "ACCOUNT HOLDER" TO ACCT-NAME
               COMPUTE ACCT-BALANCE = I * 3.25
               MOVE 0 TO ACCT-UPDATES
               WRITE ACCT-REC
               IF FS NOT = "00"
                   DISPLAY "WRITE " ACCT-NO " STATUS " FS
                   STOP RUN
               END-IF
               ADD ACCT-BALANCE TO TOTAL
           END-PERFORM
           SUBTRACT 1 FROM I
           CLOSE ACCOUNTS.

       SCAN-ACCOUNTS.
           OPEN INPUT ACCOUNTS
           MOVE 0 TO I
           PERFORM UNTIL FS NOT = "00"
               READ ACCOUNTS
               IF FS = "00"
                   ADD 1 TO I
                   ADD ACCT-BALANCE TO TOTAL
               END-IF
           END-PERFORM
           CLOSE ACCOUNTS.

       UPDATE-ACCOUNTS.
           OPEN I-O ACCOUNTS
           MOVE 0 TO I
           PERFORM UNTIL FS NOT = "00"
               READ ACCOUNTS
               IF FS = "00"
                   ADD 1 TO I
                   IF FUNCTION MOD(I, 10) = 0
                       ADD 100 TO ACCT-BALANCE
                       ADD 1 TO ACCT-UPDATES
                       REWRITE ACCT-REC
                       IF FS NOT = "00"
                           DISPLAY "REWRITE " ACCT-NO " STATUS " FS
                           STOP RUN
                       END-IF
                       ADD 1 TO UPDATED
                   END-IF
                   ADD ACCT-BALANCE TO TOTAL
               END-IF
           END-PERFORM
           IF FS NOT = "10"
               DISPLAY "READ STATUS " FS
           END-IF
           CLOSE ACCOUNTS.
