      * Reads a ledger in sequence rewriting every tenth record and prints
      * every status that is not 00, the CLOSE status and how many records
      * the file holds changed afterwards. In commit durability the bridge
      * sends the REWRITEs together; one the server refuses rolls the
      * whole unit back. With DEFERRED_MODE=LOAD it writes the ledger.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. DEFERRED.
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
       01  MODE-IN             PIC X(8).
       01  I                   PIC 9(6).
       01  READS               PIC 9(6) VALUE 0.
       01  CHANGED             PIC 9(6) VALUE 0.
       PROCEDURE DIVISION.
       MAIN.
           ACCEPT MODE-IN FROM ENVIRONMENT "DEFERRED_MODE"
           IF MODE-IN = "LOAD"
               OPEN OUTPUT LEDGER
               PERFORM VARYING I FROM 1 BY 1 UNTIL I > 700
                   MOVE I TO LEDGER-ID
                   MOVE I TO LEDGER-AMOUNT
                   WRITE LEDGER-REC
               END-PERFORM
               CLOSE LEDGER
               DISPLAY "LOADED " FS
               STOP RUN
           END-IF
           OPEN I-O LEDGER
           PERFORM UNTIL FS NOT = "00"
               READ LEDGER
               IF FS = "00"
                   ADD 1 TO READS
                   IF FUNCTION MOD(LEDGER-ID, 10) = 0
                       ADD 1000 TO LEDGER-AMOUNT
                       REWRITE LEDGER-REC
                       IF FS NOT = "00"
                           DISPLAY "REWRITE " LEDGER-ID " " FS
                       END-IF
                   END-IF
               END-IF
           END-PERFORM
           DISPLAY "READ " READS " " FS
           CLOSE LEDGER
           DISPLAY "CLOSE " FS
           OPEN INPUT LEDGER
           PERFORM UNTIL FS NOT = "00"
               READ LEDGER
               IF FS = "00" AND LEDGER-AMOUNT > 1000
                   ADD 1 TO CHANGED
               END-IF
           END-PERFORM
           DISPLAY "CHANGED " CHANGED
           CLOSE LEDGER
           STOP RUN.
