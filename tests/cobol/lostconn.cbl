      * Reads one record, waits for a line on stdin (the test stops
      * vsamrd meanwhile), then reads by key: the lost connection must
      * give status 30 at once, not a hang.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. LOSTCONN.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT ITEMS ASSIGN TO "LOSTIX"
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
       PROCEDURE DIVISION.
       MAIN.
           OPEN OUTPUT ITEMS
           MOVE 1 TO ITEM-ID MOVE "FIRST" TO ITEM-TEXT WRITE ITEM-REC
           MOVE 2 TO ITEM-ID MOVE "SECOND" TO ITEM-TEXT WRITE ITEM-REC
           CLOSE ITEMS
           OPEN INPUT ITEMS
           READ ITEMS NEXT
           DISPLAY "READ BEFORE LOSS " FS " " ITEM-REC
           DISPLAY "WAITING"
           ACCEPT LINE-IN
           MOVE 2 TO ITEM-ID
           READ ITEMS KEY IS ITEM-ID
           DISPLAY "READ AFTER LOSS " FS
           OPEN INPUT ITEMS
           DISPLAY "OPEN AFTER LOSS " FS
           STOP RUN.
