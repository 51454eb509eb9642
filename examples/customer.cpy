      *****************************************************************
      * CUSTOMER MASTER RECORD (PROD.CUST.MASTER), 120 BYTES
      *****************************************************************
       01  CUSTOMER-RECORD.
           05  CUST-ID                 PIC X(8).
           05  CUST-NAME.
               10  LAST-NAME           PIC X(20).
               10  FIRST-NAME          PIC X(15).
           05  BALANCE                 PIC S9(7)V99 COMP-3.
           05  CREDIT-LIMIT            PIC S9(5)    COMP.
           05  STATUS-CODE             PIC X.
               88  ACTIVE              VALUE 'A'.
               88  CLOSED              VALUE 'C'.
           05  OPENED-DATE             PIC 9(8).
           05  LAST-ORDERS OCCURS 3 TIMES.
               10  ORDER-DATE          PIC 9(8).
               10  ORDER-AMOUNT PIC S9(5)V99 SIGN LEADING SEPARATE.
           05  FILLER                  PIC X(11).
