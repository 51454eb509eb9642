      * REWRITE of records whose length RECORD VARYING ... DEPENDING ON
      * sets: a sequential record keeps its length (44 otherwise), an
      * indexed one takes its new length.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. RWLEN.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT VARSEQ ASSIGN TO "VARSEQ"
               ORGANIZATION IS SEQUENTIAL
               FILE STATUS IS WS-STATUS.
           SELECT VARIX ASSIGN TO "VARIX"
               ORGANIZATION IS INDEXED
               ACCESS MODE IS DYNAMIC
               RECORD KEY IS IX-KEY
               FILE STATUS IS WS-STATUS.
       DATA DIVISION.
       FILE SECTION.
       FD  VARSEQ
           RECORD IS VARYING IN SIZE FROM 5 TO 20 CHARACTERS
           DEPENDING ON WS-LEN.
       01  SEQ-REC PIC X(20).
       FD  VARIX
           RECORD IS VARYING IN SIZE FROM 5 TO 20 CHARACTERS
           DEPENDING ON WS-LEN.
       01  IX-REC.
           05 IX-KEY  PIC X(4).
           05 IX-DATA PIC X(16).
       WORKING-STORAGE SECTION.
       01  WS-STATUS PIC XX.
       01  WS-LEN    PIC 99.
       PROCEDURE DIVISION.
           OPEN OUTPUT VARSEQ
           MOVE 10 TO WS-LEN
           MOVE "FIRST-REC1" TO SEQ-REC
           WRITE SEQ-REC
           MOVE 8 TO WS-LEN
           MOVE "SECOND-R" TO SEQ-REC
           WRITE SEQ-REC
           CLOSE VARSEQ
           OPEN I-O VARSEQ
           READ VARSEQ
           DISPLAY "READ " WS-STATUS " LEN " WS-LEN
           MOVE 12 TO WS-LEN
           MOVE "FIRST-LONGER" TO SEQ-REC
           REWRITE SEQ-REC
           DISPLAY "REWRITE LONGER " WS-STATUS
           MOVE 10 TO WS-LEN
           MOVE "FIRST-SAME" TO SEQ-REC
           REWRITE SEQ-REC
           DISPLAY "REWRITE SAME " WS-STATUS
           READ VARSEQ
           DISPLAY "READ " WS-STATUS " LEN " WS-LEN
           MOVE 6 TO WS-LEN
           MOVE "SHORT!" TO SEQ-REC
           REWRITE SEQ-REC
           DISPLAY "REWRITE SHORTER " WS-STATUS
           CLOSE VARSEQ
           OPEN INPUT VARSEQ
           PERFORM 2 TIMES
               MOVE SPACES TO SEQ-REC
               READ VARSEQ
               DISPLAY "AFTER " WS-STATUS " LEN " WS-LEN " "
                   SEQ-REC(1:WS-LEN)
           END-PERFORM
           CLOSE VARSEQ
           OPEN OUTPUT VARIX
           MOVE 10 TO WS-LEN
           MOVE "K001DATA01" TO IX-REC
           WRITE IX-REC
           CLOSE VARIX
           OPEN I-O VARIX
           MOVE "K001" TO IX-KEY
           READ VARIX
           DISPLAY "IX READ " WS-STATUS " LEN " WS-LEN
           MOVE 15 TO WS-LEN
           MOVE "K001DATA-LONGER" TO IX-REC
           REWRITE IX-REC
           DISPLAY "IX REWRITE LONGER " WS-STATUS
           MOVE SPACES TO IX-REC
           MOVE "K001" TO IX-KEY
           READ VARIX
           DISPLAY "IX AFTER " WS-STATUS " LEN " WS-LEN " "
               IX-REC(1:WS-LEN)
           CLOSE VARIX
           STOP RUN.
