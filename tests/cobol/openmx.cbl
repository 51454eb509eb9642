      * OPEN in the mode OPEN_MODE names, of a file that is not OPTIONAL
      * and of one that is, then a READ NEXT of each: the OPEN matrix
      * (mode x file present or missing x OPTIONAL or not).
       IDENTIFICATION DIVISION.
       PROGRAM-ID. OPENMX.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT PLAINF ASSIGN TO "PLAINF"
               ORGANIZATION IS INDEXED
               ACCESS MODE IS DYNAMIC
               RECORD KEY IS P-KEY
               FILE STATUS IS WS-STATUS.
           SELECT OPTIONAL OPTF ASSIGN TO "OPTF"
               ORGANIZATION IS INDEXED
               ACCESS MODE IS DYNAMIC
               RECORD KEY IS O-KEY
               FILE STATUS IS WS-STATUS.
       DATA DIVISION.
       FILE SECTION.
       FD  PLAINF.
       01  P-REC.
           05 P-KEY PIC X(4).
           05 FILLER PIC X(6).
       FD  OPTF.
       01  O-REC.
           05 O-KEY PIC X(4).
           05 FILLER PIC X(6).
       WORKING-STORAGE SECTION.
       01  WS-STATUS PIC XX.
       01  WS-MODE   PIC X(6).
       PROCEDURE DIVISION.
           ACCEPT WS-MODE FROM ENVIRONMENT "OPEN_MODE"
           EVALUATE WS-MODE
             WHEN "INPUT"
               OPEN INPUT PLAINF
               DISPLAY "PLAIN " WS-STATUS
               OPEN INPUT OPTF
               DISPLAY "OPTIONAL " WS-STATUS
             WHEN "OUTPUT"
               OPEN OUTPUT PLAINF
               DISPLAY "PLAIN " WS-STATUS
               OPEN OUTPUT OPTF
               DISPLAY "OPTIONAL " WS-STATUS
             WHEN "IO"
               OPEN I-O PLAINF
               DISPLAY "PLAIN " WS-STATUS
               OPEN I-O OPTF
               DISPLAY "OPTIONAL " WS-STATUS
             WHEN "EXTEND"
               OPEN EXTEND PLAINF
               DISPLAY "PLAIN " WS-STATUS
               OPEN EXTEND OPTF
               DISPLAY "OPTIONAL " WS-STATUS
           END-EVALUATE
           READ PLAINF NEXT
           DISPLAY "PLAIN READ " WS-STATUS
           READ OPTF NEXT
           DISPLAY "OPTIONAL READ " WS-STATUS
           CLOSE PLAINF OPTF
           STOP RUN.
