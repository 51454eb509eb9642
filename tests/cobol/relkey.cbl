      * Sequential READs of a relative file past record 99 with a
      * RELATIVE KEY of PIC 99: status 14, the key cut to its digits, and
      * every READ after it reads the same record again.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. RELKEY.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT SLOTS ASSIGN TO "RELKEY"
               ORGANIZATION IS RELATIVE
               ACCESS MODE IS SEQUENTIAL
               RELATIVE KEY IS WS-REL
               FILE STATUS IS WS-STATUS.
       DATA DIVISION.
       FILE SECTION.
       FD  SLOTS.
       01  SLOT-REC PIC X(10).
       WORKING-STORAGE SECTION.
       01  WS-REL    PIC 99.
       01  WS-STATUS PIC XX.
       01  WS-N      PIC 999.
       PROCEDURE DIVISION.
           OPEN OUTPUT SLOTS
           PERFORM VARYING WS-N FROM 1 BY 1 UNTIL WS-N > 103
               MOVE WS-N TO SLOT-REC
               WRITE SLOT-REC
               IF WS-STATUS NOT = "00"
                   DISPLAY "WRITE " WS-N " REL " WS-REL
                       " STATUS " WS-STATUS
               END-IF
           END-PERFORM
           CLOSE SLOTS
           OPEN INPUT SLOTS
           MOVE 0 TO WS-N
           PERFORM UNTIL WS-STATUS NOT = "00"
               READ SLOTS NEXT
               IF WS-STATUS = "00"
                   ADD 1 TO WS-N
                   IF WS-N > 97
                       DISPLAY "READ " WS-N " REL " WS-REL
                   END-IF
               ELSE
                   DISPLAY "READ AFTER " WS-N " REL " WS-REL
                       " REC " SLOT-REC(1:3) " STATUS " WS-STATUS
               END-IF
           END-PERFORM
           MOVE 77 TO WS-REL
           MOVE SPACES TO SLOT-REC
           READ SLOTS NEXT
           DISPLAY "AGAIN REL " WS-REL " REC " SLOT-REC(1:3)
               " STATUS " WS-STATUS
           READ SLOTS NEXT
           DISPLAY "THIRD REL " WS-REL " REC " SLOT-REC(1:3)
               " STATUS " WS-STATUS
           CLOSE SLOTS
           STOP RUN.
