      * CLOSE REEL, UNIT and WITH NO REWIND of a sequential file (07; REEL
      * and UNIT leave it open), and CLOSE WITH LOCK (a later OPEN in the
      * run answers 38, until a CLOSE lets the file go).
       IDENTIFICATION DIVISION.
       PROGRAM-ID. CLOSEOPT.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT SEQF ASSIGN TO "SEQF"
               ORGANIZATION IS SEQUENTIAL
               FILE STATUS IS WS-STATUS.
           SELECT IDXF ASSIGN TO "IDXF"
               ORGANIZATION IS INDEXED
               ACCESS MODE IS DYNAMIC
               RECORD KEY IS IDX-KEY
               FILE STATUS IS WS-STATUS.
       DATA DIVISION.
       FILE SECTION.
       FD  SEQF.
       01  SEQ-REC PIC X(10).
       FD  IDXF.
       01  IDX-REC.
           05 IDX-KEY PIC X(4).
           05 FILLER  PIC X(6).
       WORKING-STORAGE SECTION.
       01  WS-STATUS PIC XX.
       PROCEDURE DIVISION.
           OPEN OUTPUT SEQF
           MOVE "ONE" TO SEQ-REC
           WRITE SEQ-REC
           CLOSE SEQF REEL
           DISPLAY "CLOSE REEL " WS-STATUS
           MOVE "TWO" TO SEQ-REC
           WRITE SEQ-REC
           DISPLAY "WRITE AFTER REEL " WS-STATUS
           CLOSE SEQF UNIT
           DISPLAY "CLOSE UNIT " WS-STATUS
           CLOSE SEQF WITH NO REWIND
           DISPLAY "CLOSE NO REWIND " WS-STATUS
           OPEN INPUT SEQF
           DISPLAY "OPEN AFTER NO REWIND " WS-STATUS
           READ SEQF
           DISPLAY "READ " WS-STATUS " " SEQ-REC
           READ SEQF
           DISPLAY "READ " WS-STATUS " " SEQ-REC
           CLOSE SEQF WITH LOCK
           DISPLAY "CLOSE LOCK " WS-STATUS
           OPEN INPUT SEQF
           DISPLAY "OPEN AFTER LOCK " WS-STATUS
           CLOSE SEQF
           DISPLAY "CLOSE NOT OPEN " WS-STATUS
           CLOSE SEQF
           DISPLAY "CLOSE AGAIN " WS-STATUS
           OPEN INPUT SEQF
           DISPLAY "OPEN AGAIN " WS-STATUS
           READ SEQF
           DISPLAY "READ LOCKED " WS-STATUS
           OPEN OUTPUT IDXF
           MOVE "K001X" TO IDX-REC
           WRITE IDX-REC
           CLOSE IDXF WITH LOCK
           DISPLAY "IDX CLOSE LOCK " WS-STATUS
           OPEN I-O IDXF
           DISPLAY "IDX OPEN AFTER LOCK " WS-STATUS
           STOP RUN.
