//! The file a GnuCOBOL program means by an ASSIGN name, found as
//! GnuCOBOL 3.1's runtime finds it (measured with its own handler):
//!
//! - a name without `/` (a leading `$` is dropped): the value of
//!   `DD_<name>`, `dd_<name>` or `<name>` in the environment, the first
//!   set; else `COB_FILE_PATH/<name>` when `COB_FILE_PATH` is set; else
//!   the name itself;
//! - a name with `/` whose first part starts with `$`: that part replaced
//!   by the variable's value (nothing when it is not set);
//! - a relative path then goes under `COB_FILE_PATH` when that is set.

/// The path GnuCOBOL opens for `assign`, with the environment `env`.
pub fn resolve(assign: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let assign = assign.trim();
    let under_file_path = |path: String| match env("COB_FILE_PATH") {
        Some(dir) if !dir.is_empty() && !path.starts_with('/') => {
            format!("{}/{path}", dir.trim_end_matches('/'))
        }
        _ => path,
    };
    match assign.split_once('/') {
        None => {
            let name = assign.strip_prefix('$').unwrap_or(assign);
            ["DD_", "dd_", ""]
                .iter()
                .find_map(|prefix| env(&format!("{prefix}{name}")).filter(|v| !v.is_empty()))
                .unwrap_or_else(|| under_file_path(name.to_string()))
        }
        Some((first, rest)) => match first.strip_prefix('$') {
            Some(variable) => match env(variable).filter(|v| !v.is_empty()) {
                Some(value) => under_file_path(format!("{}/{rest}", value.trim_end_matches('/'))),
                None => under_file_path(rest.to_string()),
            },
            None => under_file_path(assign.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn with(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    /// The cases measured with GnuCOBOL 3.1.2's own handler (a program
    /// opening each name for output, and the files it created).
    #[test]
    fn names_resolve_as_gnucobol_resolves_them() {
        let set = with(&[
            ("DD_CUSTFILE", "/srv/mapped-cust"),
            ("APPDIR", "/srv/app"),
            ("COB_FILE_PATH", "/srv/cfp"),
        ]);
        assert_eq!(resolve("CUSTFILE", &set), "/srv/mapped-cust");
        assert_eq!(resolve("data/cust.dat", &set), "/srv/cfp/data/cust.dat");
        assert_eq!(resolve("$APPDIR/orders.dat", &set), "/srv/app/orders.dat");
        assert_eq!(resolve("PLAINNAME", &set), "/srv/cfp/PLAINNAME");
        let lower = with(&[("dd_CUSTFILE", "lower-cust"), ("PLAINNAME", "env-plain")]);
        assert_eq!(resolve("CUSTFILE", &lower), "lower-cust");
        assert_eq!(resolve("PLAINNAME", &lower), "env-plain");
        assert_eq!(resolve("data/cust.dat", &lower), "data/cust.dat");
        assert_eq!(resolve("$APPDIR/orders.dat", &lower), "orders.dat");
        assert_eq!(resolve("$CUSTFILE", &lower), "lower-cust");
    }
}
