      * Two of these update the same records while another client holds
      * one of them: a REWRITE that meets the held record gets status 51
      * (record locked, as GnuCOBOL's own handler answers), waits a little
      * and tries again. With CONTEND_MODE=LOAD it writes the records.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. CONTEND.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT ITEMS ASSIGN TO "CONTIX"
               ORGANIZATION IS INDEXED
               ACCESS MODE IS RANDOM
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
       01  MODE-IN             PIC X(8).
       01  NAME-IN             PIC X(8).
       01  ROUND               PIC 9(4).
       01  WHICH               PIC 9(4).
       01  LOCKED              PIC 9(6) VALUE 0.
       01  NAP                 PIC 9(18) COMP-5 VALUE 20000000.
       PROCEDURE DIVISION.
       MAIN.
           ACCEPT MODE-IN FROM ENVIRONMENT "CONTEND_MODE"
           ACCEPT NAME-IN FROM ENVIRONMENT "CONTEND_NAME"
           IF MODE-IN = "LOAD"
               OPEN OUTPUT ITEMS
               PERFORM VARYING WHICH FROM 1 BY 1 UNTIL WHICH > 5
                   MOVE WHICH TO ITEM-ID
                   MOVE "LOADED" TO ITEM-TEXT
                   WRITE ITEM-REC
               END-PERFORM
               CLOSE ITEMS
               DISPLAY "LOADED " FS
               STOP RUN
           END-IF
           OPEN I-O ITEMS
           PERFORM VARYING ROUND FROM 1 BY 1 UNTIL ROUND > 20
               PERFORM VARYING WHICH FROM 1 BY 1 UNTIL WHICH > 5
                   MOVE WHICH TO ITEM-ID
                   READ ITEMS
                   IF FS NOT = "00"
                       DISPLAY "READ " WHICH " FAILED " FS
                       STOP RUN
                   END-IF
                   MOVE NAME-IN TO ITEM-TEXT
                   MOVE "51" TO FS
                   PERFORM UNTIL FS NOT = "51"
                       REWRITE ITEM-REC
                       IF FS = "51"
                           ADD 1 TO LOCKED
                           CALL "CBL_GC_NANOSLEEP" USING NAP
                       END-IF
                   END-PERFORM
                   IF FS NOT = "00"
                       DISPLAY "REWRITE " WHICH " FAILED " FS
                       STOP RUN
                   END-IF
               END-PERFORM
           END-PERFORM
           CLOSE ITEMS
           DISPLAY "LOCKED " LOCKED
           DISPLAY "DONE " FS
           STOP RUN.
