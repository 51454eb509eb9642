      * A relative file whose records vary in length (a VRRDS): written
      * by RRN in random access, read in sequential, random and dynamic
      * access with START, REWRITE at the same length and DELETE; a
      * second run (VREL_MODE=READ) reads what the first left.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. VREL.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT RANDF ASSIGN TO "VRELF"
               ORGANIZATION IS RELATIVE
               ACCESS MODE IS RANDOM
               RELATIVE KEY IS WS-RRN
               FILE STATUS IS FS.
           SELECT SEQF ASSIGN TO "VRELF"
               ORGANIZATION IS RELATIVE
               ACCESS MODE IS SEQUENTIAL
               RELATIVE KEY IS WS-RRN
               FILE STATUS IS FS.
           SELECT DYNF ASSIGN TO "VRELF"
               ORGANIZATION IS RELATIVE
               ACCESS MODE IS DYNAMIC
               RELATIVE KEY IS WS-RRN
               FILE STATUS IS FS.
       DATA DIVISION.
       FILE SECTION.
       FD  RANDF
           RECORD IS VARYING IN SIZE FROM 5 TO 40 CHARACTERS
           DEPENDING ON WS-LEN.
       01  RAND-REC PIC X(40).
       FD  SEQF
           RECORD IS VARYING IN SIZE FROM 5 TO 40 CHARACTERS
           DEPENDING ON WS-LEN.
       01  SEQ-REC PIC X(40).
       FD  DYNF
           RECORD IS VARYING IN SIZE FROM 5 TO 40 CHARACTERS
           DEPENDING ON WS-LEN.
       01  DYN-REC PIC X(40).
       WORKING-STORAGE SECTION.
       01  FS        PIC XX.
       01  WS-RRN    PIC 9(4).
       01  WS-LEN    PIC 99.
       01  WS-MODE   PIC X(6).
       01  N         PIC 99.
       PROCEDURE DIVISION.
           ACCEPT WS-MODE FROM ENVIRONMENT "VREL_MODE"
           IF WS-MODE = "CREATE"
               PERFORM CREATE-FILE
           END-IF
           PERFORM READ-SEQUENTIAL
           IF WS-MODE = "CREATE"
               PERFORM CHANGE-FILE
               PERFORM READ-SEQUENTIAL
           END-IF
           STOP RUN.

       CREATE-FILE.
           OPEN OUTPUT RANDF
           DISPLAY "OPEN OUTPUT " FS
           PERFORM VARYING N FROM 1 BY 1 UNTIL N > 6
               COMPUTE WS-RRN = N * 2 - 1
               COMPUTE WS-LEN = N * 5
               MOVE ALL "ABCDEFGHIJ" TO RAND-REC
               MOVE N TO RAND-REC(1:2)
               WRITE RAND-REC
               DISPLAY "WRITE " WS-RRN " LEN " WS-LEN " " FS
           END-PERFORM
           MOVE 3 TO WS-RRN
           MOVE 7 TO WS-LEN
           WRITE RAND-REC
           DISPLAY "WRITE TAKEN SLOT " FS
           MOVE 41 TO WS-LEN
           MOVE 2 TO WS-RRN
           WRITE RAND-REC
           DISPLAY "WRITE TOO LONG " FS
           CLOSE RANDF.

       READ-SEQUENTIAL.
           OPEN INPUT SEQF
           MOVE 0 TO N
           PERFORM UNTIL FS NOT = "00"
               MOVE SPACES TO SEQ-REC
               READ SEQF NEXT
               IF FS = "00"
                   ADD 1 TO N
                   DISPLAY "SEQ " WS-RRN " LEN " WS-LEN " "
                       SEQ-REC(1:WS-LEN)
               END-IF
           END-PERFORM
           DISPLAY "RECORDS " N " END " FS
           CLOSE SEQF.

       CHANGE-FILE.
           OPEN I-O DYNF
           MOVE 5 TO WS-RRN
           START DYNF KEY IS NOT LESS THAN WS-RRN
           DISPLAY "START 5 " FS
           READ DYNF NEXT
           DISPLAY "NEXT " WS-RRN " LEN " WS-LEN " " FS
           MOVE "XX" TO DYN-REC(1:2)
           REWRITE DYN-REC
           DISPLAY "REWRITE SAME LENGTH " FS
           MOVE 7 TO WS-RRN
           READ DYNF
           DISPLAY "RANDOM READ 7 LEN " WS-LEN " " FS
           DELETE DYNF
           DISPLAY "DELETE 7 " FS
           MOVE 8 TO WS-RRN
           READ DYNF
           DISPLAY "READ EMPTY 8 " FS
           MOVE 6 TO WS-RRN
           START DYNF KEY IS GREATER THAN WS-RRN
           READ DYNF NEXT
           DISPLAY "AFTER 6 IS " WS-RRN " " FS
           CLOSE DYNF
           OPEN I-O RANDF
           MOVE 1 TO WS-RRN
           READ RANDF
           DISPLAY "RANDOM 1 LEN " WS-LEN " " FS
           DELETE RANDF
           DISPLAY "DELETE 1 " FS
           CLOSE RANDF.
