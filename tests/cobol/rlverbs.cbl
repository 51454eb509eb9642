      * Relative file: sequential load, random and dynamic access by
      * RELATIVE KEY, START, DELETE and REWRITE, with the status of each
      * statement, printed so two runs can be compared line by line.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. RLVERBS.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT SLOTS ASSIGN TO "SLOTS"
               ORGANIZATION IS RELATIVE
               ACCESS MODE IS DYNAMIC
               RELATIVE KEY IS SLOT-NO
               FILE STATUS IS FS.
       DATA DIVISION.
       FILE SECTION.
       FD  SLOTS.
       01  SLOT-REC.
           05 SLOT-ID          PIC 9(4).
           05 SLOT-TEXT        PIC X(16).
       WORKING-STORAGE SECTION.
       01  FS                  PIC XX.
       01  SLOT-NO             PIC 9(6).
       01  I                   PIC 9(4).
       01  STEP                PIC X(30).
       PROCEDURE DIVISION.
       MAIN.
           OPEN OUTPUT SLOTS
           MOVE "OPEN OUTPUT" TO STEP PERFORM SHOW-STATUS
           PERFORM VARYING I FROM 1 BY 1 UNTIL I > 12
               COMPUTE SLOT-NO = I * 2
               MOVE SLOT-NO TO SLOT-ID
               MOVE "LOADED" TO SLOT-TEXT
               WRITE SLOT-REC
               IF FS NOT = "00"
                   MOVE "WRITE" TO STEP PERFORM SHOW-STATUS
               END-IF
           END-PERFORM
           MOVE 4 TO SLOT-NO
           WRITE SLOT-REC
           MOVE "WRITE SLOT 4 AGAIN" TO STEP PERFORM SHOW-STATUS
           CLOSE SLOTS

           OPEN INPUT SLOTS
           MOVE "OPEN INPUT" TO STEP PERFORM SHOW-STATUS
           PERFORM READ-ALL
           MOVE 8 TO SLOT-NO
           READ SLOTS
           MOVE "READ SLOT 8" TO STEP PERFORM SHOW-STATUS
           PERFORM SHOW-RECORD
           PERFORM READ-NEXT
           MOVE 9 TO SLOT-NO
           READ SLOTS
           MOVE "READ SLOT 9" TO STEP PERFORM SHOW-STATUS
           MOVE 9 TO SLOT-NO
           START SLOTS KEY IS >= SLOT-NO
           MOVE "START >= 9" TO STEP PERFORM SHOW-STATUS
           PERFORM READ-NEXT
           MOVE 10 TO SLOT-NO
           START SLOTS KEY IS > SLOT-NO
           MOVE "START > 10" TO STEP PERFORM SHOW-STATUS
           PERFORM READ-NEXT
           MOVE 13 TO SLOT-NO
           START SLOTS KEY IS = SLOT-NO
           MOVE "START = 13" TO STEP PERFORM SHOW-STATUS
           MOVE 99 TO SLOT-NO
           START SLOTS KEY IS >= SLOT-NO
           MOVE "START >= 99" TO STEP PERFORM SHOW-STATUS
           CLOSE SLOTS

           OPEN I-O SLOTS
           MOVE "OPEN I-O" TO STEP PERFORM SHOW-STATUS
           MOVE 6 TO SLOT-NO
           READ SLOTS
           MOVE "CHANGED" TO SLOT-TEXT
           REWRITE SLOT-REC
           MOVE "REWRITE SLOT 6" TO STEP PERFORM SHOW-STATUS
           MOVE 10 TO SLOT-NO
           DELETE SLOTS
           MOVE "DELETE SLOT 10" TO STEP PERFORM SHOW-STATUS
           MOVE 11 TO SLOT-NO
           MOVE 11 TO SLOT-ID
           MOVE "ADDED IN I-O" TO SLOT-TEXT
           WRITE SLOT-REC
           MOVE "WRITE SLOT 11" TO STEP PERFORM SHOW-STATUS
           MOVE 0 TO SLOT-NO
           WRITE SLOT-REC
           MOVE "WRITE SLOT 0" TO STEP PERFORM SHOW-STATUS
           CLOSE SLOTS

           OPEN INPUT SLOTS
           PERFORM READ-ALL
           CLOSE SLOTS
           STOP RUN.

       READ-ALL.
           MOVE "00" TO FS
           PERFORM UNTIL FS NOT = "00"
               READ SLOTS NEXT
               IF FS = "00"
                   PERFORM SHOW-RECORD
               ELSE
                   MOVE "READ NEXT" TO STEP PERFORM SHOW-STATUS
               END-IF
           END-PERFORM.

       READ-NEXT.
           READ SLOTS NEXT
           MOVE "READ NEXT" TO STEP PERFORM SHOW-STATUS
           IF FS = "00" PERFORM SHOW-RECORD END-IF.

       SHOW-STATUS.
           DISPLAY STEP " " FS.

       SHOW-RECORD.
           DISPLAY "  " SLOT-ID " " SLOT-TEXT.
