      * Statements where GnuCOBOL 3.1.2's own file handler departs from
      * the COBOL standard and from VSAM, and the bridge does not follow
      * it. Run through the bridge only; standard.expected holds what the
      * standard (and Enterprise COBOL on VSAM) gives:
      * - WRITE in OPEN EXTEND with a key below the highest key: 21
      *   (GnuCOBOL checks only the keys written since the OPEN);
      * - sequential REWRITE with a changed prime key: 21 (GnuCOBOL: 00);
      * - REWRITE or DELETE of an empty relative slot: 23 (GnuCOBOL
      *   writes into the empty slot, or answers 00);
      * - REWRITE of a variable-length sequential record at its own
      *   length, shorter than the largest: 00 (GnuCOBOL: 44, it takes
      *   only the largest length);
      * - REWRITE of a variable-length relative record at another
      *   length: the record takes its new length, as in a VRRDS
      *   (GnuCOBOL keeps the slot's old length);
      * - READ of a record whose alternate key the next record shares:
      *   02 (GnuCOBOL answers 00; the bridge does too when configured
      *   with VSAMFH_DUPLICATE_READ_STATUS=00).
       IDENTIFICATION DIVISION.
       PROGRAM-ID. STANDARD.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT PARTS ASSIGN TO "STDPARTS"
               ORGANIZATION IS INDEXED
               ACCESS MODE IS SEQUENTIAL
               RECORD KEY IS PART-NO
               FILE STATUS IS FS.
           SELECT NAMES ASSIGN TO "STDNAMES"
               ORGANIZATION IS INDEXED
               ACCESS MODE IS DYNAMIC
               RECORD KEY IS NAME-ID
               ALTERNATE RECORD KEY IS NAME-TEXT WITH DUPLICATES
               FILE STATUS IS FS.
           SELECT NOTES ASSIGN TO "STDNOTES"
               ORGANIZATION IS RELATIVE
               ACCESS MODE IS RANDOM
               RELATIVE KEY IS NOTE-NO
               FILE STATUS IS FS.
           SELECT LOG ASSIGN TO "STDLOG"
               ORGANIZATION IS SEQUENTIAL
               FILE STATUS IS FS.
           SELECT SLOTS ASSIGN TO "STDSLOTS"
               ORGANIZATION IS RELATIVE
               ACCESS MODE IS RANDOM
               RELATIVE KEY IS SLOT-NO
               FILE STATUS IS FS.
       DATA DIVISION.
       FILE SECTION.
       FD  PARTS.
       01  PART-REC.
           05 PART-NO          PIC 9(5).
           05 PART-NAME        PIC X(12).
       FD  NAMES.
       01  NAME-REC.
           05 NAME-ID          PIC 9(3).
           05 NAME-TEXT        PIC X(6).
       FD  SLOTS.
       01  SLOT-REC            PIC X(20).
       FD  NOTES
           RECORD IS VARYING IN SIZE FROM 5 TO 20 CHARACTERS
           DEPENDING ON NOTE-LEN.
       01  NOTE-REC            PIC X(20).
       FD  LOG
           RECORD IS VARYING IN SIZE FROM 5 TO 20 CHARACTERS
           DEPENDING ON LOG-LEN.
       01  LOG-REC             PIC X(20).
       WORKING-STORAGE SECTION.
       01  FS                  PIC XX.
       01  SLOT-NO             PIC 9(6).
       01  LOG-LEN             PIC 99.
       01  NOTE-NO             PIC 9(4).
       01  NOTE-LEN            PIC 99.
       01  STEP                PIC X(30).
       PROCEDURE DIVISION.
       MAIN.
           OPEN OUTPUT PARTS
           MOVE "PART" TO PART-NAME
           MOVE 100 TO PART-NO WRITE PART-REC
           MOVE 300 TO PART-NO WRITE PART-REC
           CLOSE PARTS
           OPEN EXTEND PARTS
           MOVE 200 TO PART-NO
           WRITE PART-REC
           MOVE "EXTEND BELOW HIGHEST (NEW)" TO STEP PERFORM SHOW-STATUS
           MOVE 300 TO PART-NO
           WRITE PART-REC
           MOVE "EXTEND AT HIGHEST" TO STEP PERFORM SHOW-STATUS
           MOVE 400 TO PART-NO
           WRITE PART-REC
           MOVE "EXTEND ABOVE HIGHEST" TO STEP PERFORM SHOW-STATUS
           CLOSE PARTS
           OPEN I-O PARTS
           READ PARTS
           MOVE 101 TO PART-NO
           REWRITE PART-REC
           MOVE "REWRITE CHANGED KEY" TO STEP PERFORM SHOW-STATUS
           CLOSE PARTS
           OPEN INPUT PARTS
           PERFORM UNTIL FS NOT = "00"
               READ PARTS
               IF FS = "00" DISPLAY "  " PART-REC END-IF
           END-PERFORM
           CLOSE PARTS

           OPEN OUTPUT SLOTS
           MOVE 2 TO SLOT-NO
           MOVE "SLOT TWO" TO SLOT-REC
           WRITE SLOT-REC
           CLOSE SLOTS
           OPEN I-O SLOTS
           MOVE 3 TO SLOT-NO
           REWRITE SLOT-REC
           MOVE "REWRITE EMPTY SLOT" TO STEP PERFORM SHOW-STATUS
           DELETE SLOTS
           MOVE "DELETE EMPTY SLOT" TO STEP PERFORM SHOW-STATUS
           MOVE 2 TO SLOT-NO
           DELETE SLOTS
           MOVE "DELETE SLOT 2" TO STEP PERFORM SHOW-STATUS
           DELETE SLOTS
           MOVE "DELETE SLOT 2 AGAIN" TO STEP PERFORM SHOW-STATUS
           CLOSE SLOTS

           OPEN OUTPUT LOG
           MOVE 10 TO LOG-LEN
           MOVE "TEN-CHARS!" TO LOG-REC
           WRITE LOG-REC
           CLOSE LOG
           OPEN I-O LOG
           READ LOG
           MOVE "TEN-CHANGE" TO LOG-REC
           REWRITE LOG-REC
           MOVE "REWRITE AT ITS OWN LENGTH" TO STEP PERFORM SHOW-STATUS
           CLOSE LOG
           OPEN INPUT LOG
           READ LOG
           DISPLAY "  " LOG-REC(1:LOG-LEN)
           CLOSE LOG

           OPEN OUTPUT NOTES
           MOVE 1 TO NOTE-NO
           MOVE 10 TO NOTE-LEN
           MOVE "TEN-CHARS!" TO NOTE-REC
           WRITE NOTE-REC
           CLOSE NOTES
           OPEN I-O NOTES
           READ NOTES
           MOVE 15 TO NOTE-LEN
           MOVE "FIFTEEN-CHARS!!" TO NOTE-REC
           REWRITE NOTE-REC
           MOVE "REWRITE RELATIVE LONGER" TO STEP PERFORM SHOW-STATUS
           MOVE SPACES TO NOTE-REC
           READ NOTES
           DISPLAY "  " NOTE-LEN " " NOTE-REC(1:NOTE-LEN)
           CLOSE NOTES

           OPEN OUTPUT NAMES
           MOVE "001SMITH " TO NAME-REC WRITE NAME-REC
           MOVE "002JONES " TO NAME-REC WRITE NAME-REC
           MOVE "003SMITH " TO NAME-REC WRITE NAME-REC
           MOVE "WRITE DUPLICATE NAME" TO STEP PERFORM SHOW-STATUS
           CLOSE NAMES
           OPEN INPUT NAMES
           MOVE "SMITH" TO NAME-TEXT
           READ NAMES KEY IS NAME-TEXT
           MOVE "READ SMITH, ONE FOLLOWS" TO STEP PERFORM SHOW-STATUS
           READ NAMES NEXT
           MOVE "READ NEXT, THE LAST SMITH" TO STEP PERFORM SHOW-STATUS
           DISPLAY "  " NAME-REC
           CLOSE NAMES
           STOP RUN.

       SHOW-STATUS.
           DISPLAY STEP " " FS.
