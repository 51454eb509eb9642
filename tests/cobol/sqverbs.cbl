      * Record sequential file with variable-length records: OUTPUT,
      * EXTEND, INPUT and I-O with REWRITE, and the status of each
      * statement, printed so two runs can be compared line by line.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. SQVERBS.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT JOURNAL ASSIGN TO "JOURNAL"
               ORGANIZATION IS SEQUENTIAL
               ACCESS MODE IS SEQUENTIAL
               FILE STATUS IS FS.
       DATA DIVISION.
       FILE SECTION.
       FD  JOURNAL
           RECORD IS VARYING IN SIZE FROM 12 TO 60 CHARACTERS
           DEPENDING ON REC-LEN.
       01  JOURNAL-REC.
           05 ENTRY-NO         PIC 9(6).
           05 ENTRY-KIND       PIC X(6).
           05 ENTRY-TEXT       PIC X(48).
       WORKING-STORAGE SECTION.
       01  FS                  PIC XX.
       01  REC-LEN             PIC 9(4) COMP.
       01  I                   PIC 9(4).
       01  STEP                PIC X(30).
       01  SHOWN-LEN           PIC ZZZ9.
       PROCEDURE DIVISION.
       MAIN.
           OPEN OUTPUT JOURNAL
           MOVE "OPEN OUTPUT" TO STEP PERFORM SHOW-STATUS
           PERFORM VARYING I FROM 1 BY 1 UNTIL I > 15
               MOVE I TO ENTRY-NO
               MOVE "DEBIT " TO ENTRY-KIND
               MOVE ALL "*" TO ENTRY-TEXT
               COMPUTE REC-LEN = 12 + I * 3
               WRITE JOURNAL-REC
               IF FS NOT = "00"
                   MOVE "WRITE" TO STEP PERFORM SHOW-STATUS
               END-IF
           END-PERFORM
           MOVE 70 TO REC-LEN
           WRITE JOURNAL-REC
           MOVE "WRITE 70 BYTES" TO STEP PERFORM SHOW-STATUS
           READ JOURNAL
           MOVE "READ IN OUTPUT MODE" TO STEP PERFORM SHOW-STATUS
           CLOSE JOURNAL
           MOVE "CLOSE" TO STEP PERFORM SHOW-STATUS

           OPEN EXTEND JOURNAL
           MOVE "OPEN EXTEND" TO STEP PERFORM SHOW-STATUS
           MOVE 900001 TO ENTRY-NO
           MOVE "CREDIT" TO ENTRY-KIND
           MOVE "APPENDED BY EXTEND" TO ENTRY-TEXT
           MOVE 30 TO REC-LEN
           WRITE JOURNAL-REC
           MOVE "WRITE AFTER EXTEND" TO STEP PERFORM SHOW-STATUS
           CLOSE JOURNAL

           OPEN INPUT JOURNAL
           MOVE "OPEN INPUT" TO STEP PERFORM SHOW-STATUS
           PERFORM READ-ALL
           READ JOURNAL
           MOVE "READ AFTER END" TO STEP PERFORM SHOW-STATUS
           WRITE JOURNAL-REC
           MOVE "WRITE IN INPUT MODE" TO STEP PERFORM SHOW-STATUS
           CLOSE JOURNAL

           OPEN I-O JOURNAL
           MOVE "OPEN I-O" TO STEP PERFORM SHOW-STATUS
           REWRITE JOURNAL-REC
           MOVE "REWRITE WITHOUT READ" TO STEP PERFORM SHOW-STATUS
           PERFORM 3 TIMES
               READ JOURNAL
           END-PERFORM
           MOVE "READ THIRD" TO STEP PERFORM SHOW-STATUS
           MOVE "CHANGED" TO ENTRY-TEXT
      *    At the largest length, not the record's: refused. (At the
      *    record's own length GnuCOBOL refuses it too, where the
      *    standard does not: see standard.cbl.)
           MOVE 60 TO REC-LEN
           REWRITE JOURNAL-REC
           MOVE "REWRITE THIRD" TO STEP PERFORM SHOW-STATUS
           REWRITE JOURNAL-REC
           MOVE "REWRITE AGAIN" TO STEP PERFORM SHOW-STATUS
           READ JOURNAL
           MOVE "READ FOURTH" TO STEP PERFORM SHOW-STATUS
           MOVE 40 TO REC-LEN
           REWRITE JOURNAL-REC
           MOVE "REWRITE OTHER LENGTH" TO STEP PERFORM SHOW-STATUS
           WRITE JOURNAL-REC
           MOVE "WRITE IN I-O MODE" TO STEP PERFORM SHOW-STATUS
           CLOSE JOURNAL

           OPEN INPUT JOURNAL
           PERFORM READ-ALL
           CLOSE JOURNAL
           STOP RUN.

       READ-ALL.
           MOVE "00" TO FS
           PERFORM UNTIL FS NOT = "00"
               READ JOURNAL
               IF FS = "00"
                   MOVE REC-LEN TO SHOWN-LEN
                   DISPLAY "  " SHOWN-LEN " "
                       JOURNAL-REC(1:REC-LEN)
               ELSE
                   MOVE "READ" TO STEP PERFORM SHOW-STATUS
               END-IF
           END-PERFORM.

       SHOW-STATUS.
           DISPLAY STEP " " FS.
