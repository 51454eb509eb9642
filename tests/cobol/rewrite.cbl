      * Loads 700 records, then reads them all in sequence rewriting every
      * tenth, and prints what it read: with checkpoints (COMMIT every few
      * changes) in the middle of the browse, every record is still read
      * once.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. REWRITE.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT LEDGER ASSIGN TO "LEDGER"
               ORGANIZATION IS INDEXED
               ACCESS MODE IS SEQUENTIAL
               RECORD KEY IS LEDGER-ID
               FILE STATUS IS FS.
       DATA DIVISION.
       FILE SECTION.
       FD  LEDGER.
       01  LEDGER-REC.
           05 LEDGER-ID        PIC 9(6).
           05 LEDGER-AMOUNT    PIC 9(9).
       WORKING-STORAGE SECTION.
       01  FS                  PIC XX.
       01  I                   PIC 9(6).
       01  READS               PIC 9(6) VALUE 0.
       01  TOTAL               PIC 9(12) VALUE 0.
       PROCEDURE DIVISION.
       MAIN.
           OPEN OUTPUT LEDGER
           PERFORM VARYING I FROM 1 BY 1 UNTIL I > 700
               MOVE I TO LEDGER-ID
               MOVE I TO LEDGER-AMOUNT
               WRITE LEDGER-REC
           END-PERFORM
           CLOSE LEDGER
           OPEN I-O LEDGER
           PERFORM UNTIL FS NOT = "00"
               READ LEDGER
               IF FS = "00"
                   ADD 1 TO READS
                   IF FUNCTION MOD(LEDGER-ID, 10) = 0
                       ADD 1000 TO LEDGER-AMOUNT
                       REWRITE LEDGER-REC
                   END-IF
                   ADD LEDGER-AMOUNT TO TOTAL
               END-IF
           END-PERFORM
           DISPLAY "READ " READS " " FS " TOTAL " TOTAL
           CLOSE LEDGER
           OPEN INPUT LEDGER
           MOVE 0 TO TOTAL READS
           PERFORM UNTIL FS NOT = "00"
               READ LEDGER
               IF FS = "00"
                   ADD 1 TO READS
                   ADD LEDGER-AMOUNT TO TOTAL
               END-IF
           END-PERFORM
           DISPLAY "AFTER " READS " " FS " TOTAL " TOTAL
           CLOSE LEDGER
           STOP RUN.
