      * Files named by paths and by environment variables, as a real
      * application names them: a relative path, a path under $APPDIR,
      * and a name GnuCOBOL looks up in DD_CUSTFILE. Mapped to datasets
      * by rules (VSAMFH_MAP), not file by file.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. RULEMAP.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT CUST ASSIGN TO "data/cust.dat"
               ORGANIZATION IS INDEXED
               ACCESS MODE IS DYNAMIC
               RECORD KEY IS CUST-KEY
               FILE STATUS IS FS.
           SELECT ORDERS ASSIGN TO "$APPDIR/orders.dat"
               ORGANIZATION IS SEQUENTIAL
               FILE STATUS IS FS.
           SELECT MASTER ASSIGN TO "CUSTFILE"
               ORGANIZATION IS RELATIVE
               ACCESS MODE IS SEQUENTIAL
               FILE STATUS IS FS.
       DATA DIVISION.
       FILE SECTION.
       FD  CUST.
       01  CUST-REC.
           05 CUST-KEY  PIC X(4).
           05 CUST-NAME PIC X(8).
       FD  ORDERS.
       01  ORDER-REC    PIC X(12).
       FD  MASTER.
       01  MASTER-REC   PIC X(12).
       WORKING-STORAGE SECTION.
       01  FS           PIC XX.
       01  N            PIC 9.
       PROCEDURE DIVISION.
           OPEN OUTPUT CUST ORDERS MASTER
           DISPLAY "OPEN OUTPUT " FS
           PERFORM VARYING N FROM 1 BY 1 UNTIL N > 3
               MOVE SPACES TO CUST-REC
               STRING "C00" N "NAME-" N DELIMITED BY SIZE
                   INTO CUST-REC
               WRITE CUST-REC
               MOVE CUST-REC TO ORDER-REC MASTER-REC
               WRITE ORDER-REC
               WRITE MASTER-REC
           END-PERFORM
           DISPLAY "WRITTEN " FS
           CLOSE CUST ORDERS MASTER
           OPEN INPUT CUST ORDERS MASTER
           PERFORM 4 TIMES
               READ CUST NEXT
               DISPLAY "CUST " CUST-REC " " FS
               READ ORDERS
               DISPLAY "ORDER " ORDER-REC " " FS
               READ MASTER
               DISPLAY "MASTER " MASTER-REC " " FS
           END-PERFORM
           CLOSE CUST ORDERS MASTER
           STOP RUN.
