//! PRINT: a dataset's or file's records, each under its key (RBA, RRN or
//! number in the file), in CHARACTER, HEX or DUMP form.

use super::Context;
use super::input::{Place, Select, open_input, place, records};
use super::listing::cc;
use super::syntax::{Keyword, Params, SyntaxError, kw};
use vsam_client::{Organization, Record};
use vsam_plugin_sdk::codepage::CodePage;

/// How records are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Character,
    Hex,
    Dump,
}

struct Print {
    from: Place,
    select: Select,
    form: Form,
}

fn parse(cx: &Context<'_>, mut params: Params) -> Result<Print, SyntaxError> {
    let from = place(cx, &mut params, kw::INDATASET, kw::INFILE)?
        .ok_or_else(|| SyntaxError::missing("INDATASET OR INFILE", "PRINT"))?;
    let select = Select::take(&mut params)?;
    let forms: Vec<Form> = [
        (kw::CHARACTER, Form::Character),
        (kw::HEX, Form::Hex),
        (kw::DUMP, Form::Dump),
    ]
    .into_iter()
    .map(|(keyword, form)| params.flag(keyword).map(|given| given.then_some(form)))
    .collect::<Result<Vec<_>, _>>()?
    .into_iter()
    .flatten()
    .collect();
    if forms.len() > 1 {
        return Err(SyntaxError::other(
            "CHARACTER, HEX AND DUMP EXCLUDE EACH OTHER",
        ));
    }
    if let Some(item) = params.take(Keyword {
        name: "OUTFILE",
        short: &["OFILE"],
    })? {
        return Err(SyntaxError::other(format!(
            "{item} IS NOT SUPPORTED: PRINT WRITES TO STANDARD OUTPUT"
        )));
    }
    params.finish()?;
    Ok(Print {
        from,
        select,
        form: forms.first().copied().unwrap_or(Form::Dump),
    })
}

/// PRINT.
pub async fn run(cx: &mut Context<'_>, params: Params) -> Result<u8, SyntaxError> {
    let print = parse(cx, params)?;
    let dataset = match open_input(cx, &print.from).await {
        Ok(dataset) => dataset,
        Err(code) => return Ok(code),
    };
    let selection = match &dataset {
        Some(dataset) => print.select.on(dataset.spec()),
        None => print.select.plain(),
    }
    .map_err(|problem| SyntaxError::other(problem.to_ascii_uppercase()))?;
    let codepage_name = dataset
        .as_ref()
        .map_or(cx.codepage.to_string(), |d| d.spec().codepage.clone());
    let codepage: CodePage = codepage_name.parse().unwrap_or(CodePage::Ascii);
    let mut records =
        match records(cx, &print.from, dataset.as_ref(), &codepage_name, selection).await {
            Ok(records) => records,
            Err(code) => return Ok(code),
        };
    let organization = dataset.as_ref().map(|d| d.spec().organization);
    cx.listing.line("");
    cx.listing
        .line(&format!("LISTING OF DATA SET -{}", print.from.name()));
    let mut count = 0usize;
    let mut code = cc::OK;
    loop {
        match records.next_batch().await {
            Ok(Some(batch)) => {
                for record in &batch {
                    cx.listing.line("");
                    cx.listing
                        .line(&heading(record, organization, print.form, codepage));
                    for line in body(&record.data, print.form, codepage) {
                        cx.listing.line(&line);
                    }
                    count += 1;
                }
            }
            Ok(None) => break,
            Err(error) => {
                cx.listing
                    .message(format!("IDC3302I ACTION ERROR ON {}", print.from.name()));
                cx.listing.message(format!("VSR3302I ** {error:#}"));
                code = cc::FAILED;
                break;
            }
        }
    }
    drop(records);
    if let Some(dataset) = dataset {
        let _ = dataset.close().await;
    }
    cx.listing.line("");
    cx.listing
        .message(format!("IDC0005I NUMBER OF RECORDS PROCESSED WAS {count}"));
    // An empty input warns: `IF LASTCC = 4` tells a deck it is empty.
    if count == 0 && code == cc::OK {
        code = cc::WARNING;
    }
    Ok(code)
}

/// The line before a record: its key, RBA, RRN or number in the file.
fn heading(
    record: &Record,
    organization: Option<Organization>,
    form: Form,
    codepage: CodePage,
) -> String {
    match organization {
        Some(Organization::Ksds) => format!(
            "KEY OF RECORD - {}",
            match form {
                Form::Character => characters(&record.key, codepage),
                Form::Hex | Form::Dump => hex::encode_upper(&record.key),
            }
        ),
        Some(Organization::Esds) => format!("RBA OF RECORD - {}", record.address),
        Some(Organization::Rrds | Organization::Vrrds) => {
            format!("RELATIVE RECORD NUMBER - {}", record.address)
        }
        None => format!("RECORD SEQUENCE NUMBER - {}", record.address),
    }
}

/// A record's lines in a form.
fn body(data: &[u8], form: Form, codepage: CodePage) -> Vec<String> {
    match form {
        Form::Character => data
            .chunks(120)
            .map(|chunk| characters(chunk, codepage))
            .collect(),
        Form::Hex => data.chunks(60).map(hex::encode_upper).collect(),
        Form::Dump => data
            .chunks(32)
            .enumerate()
            .map(|(i, chunk)| {
                let words: Vec<String> = chunk.chunks(4).map(hex::encode_upper).collect();
                let left = words.iter().take(4).cloned().collect::<Vec<_>>().join(" ");
                let right = words.iter().skip(4).cloned().collect::<Vec<_>>().join(" ");
                format!(
                    "{:06X}  {left:<35}  {right:<35}  *{}*",
                    i * 32,
                    characters(chunk, codepage)
                )
            })
            .collect(),
    }
}

/// Bytes as characters of the code page, `.` for what does not print.
fn characters(bytes: &[u8], codepage: CodePage) -> String {
    bytes
        .iter()
        .map(|&b| match codepage.is_printable(b) {
            true => codepage.decode_byte(b).unwrap_or('.'),
            false => '.',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_shows_offsets_hex_words_and_characters() {
        let record: Vec<u8> = CodePage::Cp037
            .encode("00000001 JOHN SMITH                 LONDON")
            .unwrap();
        let lines = body(&record, Form::Dump, CodePage::Cp037);
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            "000000  F0F0F0F0 F0F0F0F1 40D1D6C8 D540E2D4  C9E3C840 40404040 40404040 40404040  *00000001 JOHN SMITH             *"
        );
        // Both lines as Python's cp037 codec and formatting make them.
        assert_eq!(
            lines[1],
            "000020  40404040 D3D6D5C4 D6D5                                                    *    LONDON*"
        );
        assert_eq!(
            body(&[0xC1, 0x00, 0xC2], Form::Character, CodePage::Cp037),
            ["A.B"]
        );
        assert_eq!(body(&[0xC1, 0x00], Form::Hex, CodePage::Cp037), ["C100"]);
    }
}
