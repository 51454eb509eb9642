      * Browses a file across the loss of its server: reads three
      * records, waits for a line on stdin (the test stops the first
      * server of VSAMFH_SERVER meanwhile), then reads the rest in
      * order and writes one more record, through the next server.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. FAILOVER.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT ITEMS ASSIGN TO "FAILIX"
               ORGANIZATION IS INDEXED
               ACCESS MODE IS DYNAMIC
               RECORD KEY IS ITEM-ID
               FILE STATUS IS FS.
       DATA DIVISION.
       FILE SECTION.
       FD  ITEMS.
       01  ITEM-REC.
           05 ITEM-ID          PIC 9(4).
           05 ITEM-TEXT        PIC X(16).
       WORKING-STORAGE SECTION.
       01  FS                  PIC XX.
       01  LINE-IN             PIC X(10).
       01  EXPECTED            PIC 9(4).
       01  READ-COUNT          PIC 9(4) VALUE 0.
       PROCEDURE DIVISION.
       MAIN.
           OPEN OUTPUT ITEMS
           PERFORM VARYING ITEM-ID FROM 1 BY 1 UNTIL ITEM-ID > 600
               MOVE "BEFORE" TO ITEM-TEXT
               WRITE ITEM-REC
           END-PERFORM
           CLOSE ITEMS
           OPEN I-O ITEMS
           PERFORM 3 TIMES
               READ ITEMS NEXT
           END-PERFORM
           DISPLAY "READ BEFORE LOSS " FS " " ITEM-REC
           DISPLAY "WAITING"
           ACCEPT LINE-IN
           MOVE 4 TO EXPECTED
           PERFORM UNTIL EXPECTED > 600
               READ ITEMS NEXT
               IF FS NOT = "00" OR ITEM-ID NOT = EXPECTED
                   DISPLAY "OUT OF ORDER " FS " " ITEM-REC
                   STOP RUN
               END-IF
               ADD 1 TO EXPECTED READ-COUNT
           END-PERFORM
           DISPLAY "READ AFTER LOSS " READ-COUNT " LAST " ITEM-ID
           READ ITEMS NEXT
           DISPLAY "END AFTER LOSS " FS
           MOVE 601 TO ITEM-ID MOVE "AFTER" TO ITEM-TEXT
           WRITE ITEM-REC
           DISPLAY "WRITE AFTER LOSS " FS
           CLOSE ITEMS
           OPEN INPUT ITEMS
           MOVE 601 TO ITEM-ID
           READ ITEMS KEY IS ITEM-ID
           DISPLAY "READ BACK " FS " " ITEM-REC
           CLOSE ITEMS
           STOP RUN.
