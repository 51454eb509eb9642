      * Indexed file in sequential access: a load in key order, a key
      * out of order, EXTEND, and sequential REWRITE and DELETE (which
      * need the READ just before and the same key), with the status of
      * each statement, printed so two runs can be compared line by line.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. IXSEQ.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT PARTS ASSIGN TO "PARTS"
               ORGANIZATION IS INDEXED
               ACCESS MODE IS SEQUENTIAL
               RECORD KEY IS PART-NO
               FILE STATUS IS FS.
       DATA DIVISION.
       FILE SECTION.
       FD  PARTS.
       01  PART-REC.
           05 PART-NO          PIC 9(5).
           05 PART-QTY         PIC S9(5) COMP.
           05 PART-NAME        PIC X(12).
       WORKING-STORAGE SECTION.
       01  FS                  PIC XX.
       01  I                   PIC 9(4).
       01  STEP                PIC X(30).
       01  SHOWN-QTY           PIC -(5)9.
       PROCEDURE DIVISION.
       MAIN.
           OPEN OUTPUT PARTS
           MOVE "OPEN OUTPUT" TO STEP PERFORM SHOW-STATUS
           PERFORM VARYING I FROM 1 BY 1 UNTIL I > 10
               COMPUTE PART-NO = I * 100
               COMPUTE PART-QTY = I * 7 - 30
               MOVE "PART" TO PART-NAME
               WRITE PART-REC
               IF FS NOT = "00"
                   MOVE "WRITE" TO STEP PERFORM SHOW-STATUS
               END-IF
           END-PERFORM
           MOVE 550 TO PART-NO
           WRITE PART-REC
           MOVE "WRITE OUT OF ORDER" TO STEP PERFORM SHOW-STATUS
           MOVE 1000 TO PART-NO
           WRITE PART-REC
           MOVE "WRITE SAME KEY" TO STEP PERFORM SHOW-STATUS
           CLOSE PARTS

           OPEN EXTEND PARTS
           MOVE "OPEN EXTEND" TO STEP PERFORM SHOW-STATUS
           MOVE 1100 TO PART-NO
           MOVE "EXTENDED" TO PART-NAME
           WRITE PART-REC
           MOVE "EXTEND ABOVE LAST KEY" TO STEP PERFORM SHOW-STATUS
           CLOSE PARTS

           OPEN I-O PARTS
           MOVE "OPEN I-O" TO STEP PERFORM SHOW-STATUS
           DELETE PARTS
           MOVE "DELETE WITHOUT READ" TO STEP PERFORM SHOW-STATUS
           READ PARTS
           READ PARTS
           MOVE "READ SECOND" TO STEP PERFORM SHOW-STATUS
           ADD 1000 TO PART-QTY
           REWRITE PART-REC
           MOVE "REWRITE SECOND" TO STEP PERFORM SHOW-STATUS
           READ PARTS
           READ PARTS
           DELETE PARTS
           MOVE "DELETE FOURTH" TO STEP PERFORM SHOW-STATUS
           DELETE PARTS
           MOVE "DELETE AGAIN" TO STEP PERFORM SHOW-STATUS
           MOVE 450 TO PART-NO
           WRITE PART-REC
           MOVE "WRITE IN I-O MODE" TO STEP PERFORM SHOW-STATUS
           CLOSE PARTS

           OPEN INPUT PARTS
           MOVE 500 TO PART-NO
           START PARTS KEY IS >= PART-NO
           MOVE "START >= 500" TO STEP PERFORM SHOW-STATUS
           PERFORM READ-ALL
           CLOSE PARTS
           OPEN INPUT PARTS
           PERFORM READ-ALL
           CLOSE PARTS
           STOP RUN.

       READ-ALL.
           MOVE "00" TO FS
           PERFORM UNTIL FS NOT = "00"
               READ PARTS
               IF FS = "00"
                   MOVE PART-QTY TO SHOWN-QTY
                   DISPLAY "  " PART-NO " " SHOWN-QTY " " PART-NAME
               ELSE
                   MOVE "READ" TO STEP PERFORM SHOW-STATUS
               END-IF
           END-PERFORM.

       SHOW-STATUS.
           DISPLAY STEP " " FS.
