use super::*;

fn ok() -> Answer {
    Answer::Result {
        status: vsam_protocol::Status::ok(),
        records: Vec::new(),
    }
}

/// A pattern matching a flood of datasets gives at most MAX_DATASETS
/// series; the rest are counted together, nothing is dropped.
#[test]
fn per_dataset_series_are_capped_and_the_rest_counted_as_other() {
    let metrics = Metrics::new(vec!["FLOOD.**".into()], false);
    for n in 0..MAX_DATASETS + 5 {
        metrics.dataset_request(&format!("FLOOD.D{n}"), "GET", &ok());
    }
    metrics.dataset_request("FLOOD.D0", "GET", &ok());
    metrics.dataset_request("OTHER.D0", "GET", &ok());
    let text = metrics.render(Scrape::default());
    let series: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("vsamrd_dataset_requests_total"))
        .collect();
    assert_eq!(series.len(), MAX_DATASETS + 1, "{} series", series.len());
    assert!(
        text.contains(
            r#"vsamrd_dataset_requests_total{dataset="(other)",kind="GET",outcome="ok"} 5"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"vsamrd_dataset_requests_total{dataset="FLOOD.D0",kind="GET",outcome="ok"} 2"#
    ));
    assert!(!text.contains("OTHER.D0"), "only the datasets named");
}
