use super::*;

const CUSTOMER: &str = include_str!("../../../../examples/customer.cpy");
const RECORDS: &[u8] = include_bytes!("../../../../examples/customer.dat");

fn customer() -> Mapping {
    Mapping::new(CUSTOMER, CodePage::Cp037).unwrap()
}

fn first_record() -> Vec<u8> {
    RECORDS[..120].to_vec()
}

#[test]
fn one_column_per_named_elementary_field_and_filler_as_residue() {
    let mapping = customer();
    let names: Vec<&str> = mapping.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "cust_id",
            "last_name",
            "first_name",
            "balance",
            "credit_limit",
            "status_code",
            "opened_date",
            "order_date_1",
            "order_amount_1",
            "order_date_2",
            "order_amount_2",
            "order_date_3",
            "order_amount_3",
        ]
    );
    assert_eq!(mapping.size, 120);
    assert_eq!(mapping.residue, [(109, 120)]);
    assert!(matches!(mapping.columns[4].kind, Kind::Integer(_)));
    assert!(matches!(mapping.columns[3].kind, Kind::Decimal(_, p) if p.scale == 2));
}

#[test]
fn records_split_into_typed_values_and_rebuild_exactly() {
    let mapping = customer();
    for record in RECORDS.chunks(120) {
        let split = mapping.split(record).unwrap();
        assert_eq!(split.length, None);
        let rebuilt = mapping.build(&split.cells, Some(&split.residue), split.length);
        assert_eq!(rebuilt.unwrap(), record);
    }
    let cells = mapping.split(&first_record()).unwrap().cells;
    assert_eq!(cells[0], Cell::Text("00000042".into()));
    assert_eq!(cells[1], Cell::Text("SMITH".into()));
    assert_eq!(cells[3], Cell::Number("-301.75".parse().unwrap()));
    assert_eq!(cells[4], Cell::Number(Decimal::new(5000, 0)));
}

#[test]
fn records_that_typed_columns_cannot_hold_are_refused_with_the_reason() {
    let mapping = customer();
    let mut bad_packed = first_record();
    bad_packed[43] = 0xAB;
    let why = mapping.split(&bad_packed).unwrap_err();
    assert!(why.contains("BALANCE"), "{why}");

    let mut low_values = first_record();
    low_values[10] = 0x00;
    let why = mapping.split(&low_values).unwrap_err();
    assert!(why.contains("LAST-NAME") && why.contains("X'00'"), "{why}");

    // A positive packed sign X'F' instead of the preferred X'C'.
    let mut odd_sign = first_record();
    odd_sign[47] = (odd_sign[47] & 0xF0) | 0x0F;
    let why = mapping.split(&odd_sign).unwrap_err();
    assert!(
        why.contains("BALANCE") && why.contains("standard form"),
        "{why}"
    );

    let why = mapping
        .split(&[RECORDS[..120].to_vec(), vec![0x40]].concat())
        .unwrap_err();
    assert!(why.contains("121 bytes"), "{why}");
}

#[test]
fn rows_from_sql_writers_build_records_with_defaults_and_checks() {
    let mapping = customer();
    let mut cells = vec![Cell::Null; mapping.columns.len()];
    cells[0] = Cell::Text("00000099".into());
    cells[1] = Cell::Text("JONES".into());
    cells[3] = Cell::Text("-12.5".into());
    let record = mapping.build(&cells, None, None).unwrap();
    assert_eq!(record.len(), 120);
    assert_eq!(&record[..8], CodePage::Cp037.encode("00000099").unwrap());
    let back = mapping.split(&record).unwrap().cells;
    assert_eq!(back[3], Cell::Number("-12.50".parse().unwrap()));
    assert_eq!(back[2], Cell::Text(String::new()));

    cells[1] = Cell::Text("A NAME LONGER THAN TWENTY".into());
    let why = mapping.build(&cells, None, None).unwrap_err();
    assert!(
        why.contains("last_name") && why.contains("room for 20"),
        "{why}"
    );
    cells[1] = Cell::Text("OK".into());
    cells[3] = Cell::Number("123456789.00".parse().unwrap());
    assert!(
        mapping
            .build(&cells, None, None)
            .unwrap_err()
            .contains("balance")
    );
}

#[test]
fn multi_record_type_copybooks_are_refused() {
    let two = "       01  HEADER-REC.\n           05  H-TYPE PIC X.\n       01  DETAIL-REC.\n           05  D-TYPE PIC X.\n";
    let why = Mapping::new(two, CodePage::Ascii).unwrap_err();
    assert!(
        why.contains("2 record types") && why.contains("HEADER-REC, DETAIL-REC"),
        "{why}"
    );
}

#[test]
fn short_records_keep_their_length() {
    let layout = "       01  REC.\n           05  K PIC X(4).\n           05  BODY PIC X(20).\n";
    let mapping = Mapping::new(layout, CodePage::Ascii).unwrap();
    for record in [&b"KEY1-DATA"[..], b"KEY2-DATA   ", b"K"] {
        let split = mapping.split(record).unwrap();
        assert_eq!(split.length, Some(record.len()));
        let rebuilt = mapping.build(&split.cells, Some(&split.residue), split.length);
        assert_eq!(rebuilt.unwrap(), record);
    }
    let full = b"KEY3ABCDEFGHIJKLMNOPQRST";
    assert_eq!(mapping.split(full).unwrap().length, None);
}
