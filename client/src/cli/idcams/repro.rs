//! REPRO: copies records from a dataset or file to a dataset or file;
//! into a dataset, REPLACE replaces the records whose key or slot is
//! taken and REUSE empties it first; ERRORLIMIT refusals are taken before
//! it stops.

use super::Context;
use super::input::{Place, Records, Select, open_failed, open_input, place, records};
use super::listing::cc;
use super::syntax::{Params, SyntaxError, kw};
use crate::cli::repro::{
    Loader, Refusal, create_output, empty, in_slot, open_for_load, write_record,
};
use vsam_client::{Dataset, Organization};
use vsam_protocol::{fdbk, r15};

/// IDCAMS stops a REPRO into a dataset after four refused records.
const DEFAULT_ERROR_LIMIT: usize = 4;

struct Repro {
    from: Place,
    to: Place,
    select: Select,
    replace: bool,
    reuse: bool,
    error_limit: usize,
}

fn parse(cx: &Context<'_>, mut params: Params) -> Result<Repro, SyntaxError> {
    let from = place(cx, &mut params, kw::INDATASET, kw::INFILE)?
        .ok_or_else(|| SyntaxError::missing("INDATASET OR INFILE", "REPRO"))?;
    let to = place(cx, &mut params, kw::OUTDATASET, kw::OUTFILE)?
        .ok_or_else(|| SyntaxError::missing("OUTDATASET OR OUTFILE", "REPRO"))?;
    let select = Select::take(&mut params)?;
    let replace = params.either(kw::REPLACE, kw::NOREPLACE)?.unwrap_or(false);
    let reuse = params.either(kw::REUSE, kw::NOREUSE)?.unwrap_or(false);
    let error_limit = params
        .numbers(kw::ERRORLIMIT, 1)?
        .map_or(DEFAULT_ERROR_LIMIT, |n| {
            usize::try_from(n[0]).unwrap_or(usize::MAX)
        });
    params.finish()?;
    if from == to {
        return Err(SyntaxError::other(format!(
            "REPRO READS AND WRITES {}: NAME TWO PLACES",
            from.name()
        )));
    }
    if matches!(to, Place::File { .. }) && (replace || reuse) {
        return Err(SyntaxError::other(
            "REPLACE AND REUSE APPLY TO AN OUTPUT DATASET, NOT TO A FILE",
        ));
    }
    Ok(Repro {
        from,
        to,
        select,
        replace,
        reuse,
        error_limit,
    })
}

/// REPRO.
pub async fn run(cx: &mut Context<'_>, params: Params) -> Result<u8, SyntaxError> {
    let repro = parse(cx, params)?;
    // The input dataset, opened first: its catalog entry says what its
    // keys and code page are.
    let input = match open_input(cx, &repro.from).await {
        Ok(dataset) => dataset,
        Err(code) => return Ok(code),
    };
    if let Place::Dataset(name) = &repro.to
        && repro.reuse
        && let Err(error) = empty(cx.conn, name).await
    {
        cx.listing
            .message("VSR3300I ** REUSE COULD NOT EMPTY IT: NO RECORD WAS COPIED");
        return Ok(open_failed(cx, name, &error));
    }
    let output = match &repro.to {
        Place::Dataset(name) => match open_for_load(cx.conn, name, repro.replace).await {
            Ok(dataset) => Some(dataset),
            Err(error) => return Ok(open_failed(cx, name, &error)),
        },
        Place::File { .. } => None,
    };
    // Keys select in the input's terms, or for a file in the output's.
    let keyed_spec = input.as_ref().or(output.as_ref()).map(|d| d.spec().clone());
    let selection = match &keyed_spec {
        Some(spec) => repro.select.on(spec),
        None => repro.select.plain(),
    }
    .map_err(|problem| SyntaxError::other(problem.to_ascii_uppercase()))?;
    let codepage = keyed_spec
        .as_ref()
        .map_or(cx.codepage.to_string(), |spec| spec.codepage.clone());
    let mut records = match records(cx, &repro.from, input.as_ref(), &codepage, selection).await {
        Ok(records) => records,
        Err(code) => return Ok(code),
    };
    let code = match (&repro.to, &output) {
        (Place::Dataset(name), Some(dataset)) => {
            into_dataset(cx, &repro, name, dataset, &input, &mut records).await
        }
        (Place::File { path, format, .. }, None) => {
            let codec = match super::input::file_codec(&codepage) {
                Ok(codec) => codec,
                Err(error) => {
                    cx.listing.message(format!("VSR3300I ** {error:#}"));
                    return Ok(cc::FAILED);
                }
            };
            // Each batch is written as it comes: a dataset of any size
            // goes through the memory of one batch.
            let mut count = 0usize;
            let mut failure = None;
            match create_output(path) {
                Err(error) => failure = Some(format!("{error:#}")),
                Ok(mut out) => {
                    loop {
                        match records.next_batch().await {
                            Ok(Some(batch)) => {
                                for record in &batch {
                                    if let Err(error) =
                                        write_record(&mut out, &record.data, *format, &codec)
                                    {
                                        failure = Some(format!("record {}: {error:#}", count + 1));
                                        break;
                                    }
                                    count += 1;
                                }
                            }
                            Ok(None) => break,
                            Err(error) => {
                                failure = Some(format!("{error:#}"));
                                break;
                            }
                        }
                        if failure.is_some() {
                            break;
                        }
                    }
                    if failure.is_none()
                        && let Err(error) = out.flush()
                    {
                        failure = Some(format!("cannot write {}: {error}", path.display()));
                    }
                    if failure.is_some() {
                        failure = failure.map(|problem| {
                            format!(
                                "{problem} ({} holds only the first {count} records)",
                                path.display()
                            )
                        });
                    }
                }
            }
            match failure {
                Some(problem) => {
                    cx.listing
                        .message(format!("IDC3302I ACTION ERROR ON {}", repro.to.name()));
                    cx.listing.message(format!("VSR3302I ** {problem}"));
                    cx.listing
                        .message(format!("IDC0005I NUMBER OF RECORDS PROCESSED WAS {count}"));
                    cc::FAILED
                }
                None => {
                    cx.listing
                        .message(format!("IDC0005I NUMBER OF RECORDS PROCESSED WAS {count}"));
                    if count == 0 { cc::WARNING } else { cc::OK }
                }
            }
        }
        _ => unreachable!("a dataset output is opened above"),
    };
    drop(records);
    if let Some(dataset) = input {
        let _ = dataset.close().await;
    }
    if let Some(dataset) = output
        && let Err(error) = dataset.close().await
    {
        return Ok(code.max(cx.listing.client_error(&repro.to.name(), &error)));
    }
    Ok(code)
}

/// Copies the input's records into an open dataset.
async fn into_dataset(
    cx: &mut Context<'_>,
    repro: &Repro,
    name: &str,
    dataset: &Dataset,
    input: &Option<Dataset>,
    records: &mut Records<'_>,
) -> u8 {
    let organization = dataset.spec().organization;
    // An RRDS copied to an RRDS keeps its slots; other inputs fill slots
    // 1, 2, ... in order.
    let keeps_slots = matches!(organization, Organization::Rrds | Organization::Vrrds)
        && input.as_ref().is_some_and(|i| {
            matches!(
                i.spec().organization,
                Organization::Rrds | Organization::Vrrds
            )
        });
    let mut loader = Loader::new(dataset, repro.replace, repro.error_limit);
    let mut number = 0usize;
    let mut read_failure = None;
    while loader.going() {
        match loader.alongside(records.next_batch()).await {
            Ok(Some(batch)) => {
                let numbered = batch
                    .into_iter()
                    .map(|record| {
                        number += 1;
                        let mut chained = in_slot(organization, number, record.data);
                        if keeps_slots {
                            chained.address = record.address;
                        }
                        (number, chained)
                    })
                    .collect();
                loader.feed(numbered).await;
            }
            Ok(None) => break,
            Err(error) => {
                read_failure = Some(error);
                break;
            }
        }
    }
    let loaded = loader.finish().await;
    let mut code = cc::OK;
    let key_field = {
        let spec = dataset.spec();
        (spec.key_offset as usize, usize::from(spec.key_length))
    };
    for refusal in &loaded.refused {
        code = code.max(cc::BYPASSED);
        report_refusal(cx, name, organization, key_field, refusal);
    }
    if loaded.over_limit {
        cx.listing.message("IDC31467I MAXIMUM ERROR LIMIT REACHED.");
        code = cc::FAILED;
    }
    if let Some((error, _)) = &loaded.stopped {
        cx.listing
            .message(format!("IDC3302I ACTION ERROR ON {name}"));
        code = code
            .max(cx.listing.client_error(name, error))
            .max(cc::FAILED);
    }
    if let Some(error) = read_failure {
        cx.listing
            .message(format!("IDC3302I ACTION ERROR ON {}", repro.from.name()));
        cx.listing.message(format!("VSR3302I ** {error:#}"));
        code = code.max(cc::FAILED);
    }
    cx.listing.message(format!(
        "IDC0005I NUMBER OF RECORDS PROCESSED WAS {}",
        loaded.written
    ));
    if number == 0 && code == cc::OK {
        code = cc::WARNING;
    }
    code
}

/// The messages of a record the output refused.
fn report_refusal(
    cx: &mut Context<'_>,
    name: &str,
    organization: Organization,
    (offset, length): (usize, usize),
    refusal: &Refusal,
) {
    let (record, error) = (&refusal.record, &refusal.error);
    let key: Vec<u8> = match organization {
        Organization::Ksds => record.iter().skip(offset).take(length).copied().collect(),
        _ => Vec::new(),
    };
    let first_five = hex::encode_upper(&key[..key.len().min(5)]);
    let status = &error.status;
    let number = refusal.number;
    if status.r15 == r15::LOGICAL && status.fdbk == fdbk::DUPLICATE_KEY.0 {
        cx.listing
            .message(format!("IDC3308I ** DUPLICATE RECORD {first_five}"));
        cx.listing.message(format!(
            "VSR3308I ** RECORD {number} OF THE INPUT IS LEFT OUT (REPLACE REPLACES THE RECORD STORED)"
        ));
    } else {
        cx.listing
            .message(format!("IDC3302I ACTION ERROR ON {name}"));
        cx.listing.message(format!(
            "IDC3351I ** VSAM I/O RETURN CODE IS {} - RPLFDBWD = X'00{:02X}00{:02X}'",
            status.r15, status.r15, status.fdbk
        ));
        cx.listing.message(format!(
            "VSR3009I ** RECORD {number} OF THE INPUT IS LEFT OUT: {}",
            error.status.message
        ));
    }
}
