//! The environment variables of the programs on either side of the
//! protocol (vsamrd, vsamr, the COBOL bridge), checked the same way: each
//! program owns a prefix (`VSAMRD_`, `VSAMR_`, `VSAMFH_`), and a variable
//! with its prefix that it does not read is refused, naming the one it was
//! most likely meant to be. Ignored, a misspelt `VSAMFH_SEVER` or
//! `VSAMRD_CONFG` would leave the program on its default server or
//! configuration, writing where no one looks.

/// Refuses the first of `present` that starts with `prefix` and is
/// neither one of `known` nor of a family of `families` (prefixes such as
/// `VSAMFH_FILE_`, whose variables name what they map). The message names
/// the variable, the one meant when one is close (at most three edits
/// away, or a family's prefix at most two), and every variable read.
pub fn check<'a>(
    program: &str,
    prefix: &str,
    known: &[&str],
    families: &[&str],
    present: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    for var in present {
        if !var.starts_with(prefix)
            || known.contains(&var)
            || families.iter().any(|family| var.starts_with(family))
        {
            continue;
        }
        let mut meant = known
            .iter()
            .map(|name| (strsim::levenshtein(name, var), name.to_string()))
            .min()
            .filter(|(distance, _)| *distance <= 3)
            .map(|(_, name)| name);
        for family in families {
            let head: String = var.chars().take(family.chars().count()).collect();
            if meant.is_none() && strsim::levenshtein(&head, family) <= 2 {
                meant = Some(format!("{family}{}", &var[head.len()..]));
            }
        }
        let mut read = known.join(", ");
        for family in families {
            read.push_str(&format!(", {family}<NAME>"));
        }
        return Err(format!(
            "{var}: {program} reads no such variable{}; it reads {read}",
            meant.map_or(String::new(), |m| format!(" (meant {m}?)"))
        ));
    }
    Ok(())
}

/// Checks this process's environment (see [`check`]) for a program whose
/// options are the clap `command`: it reads the variables of its options
/// and its subcommands' (`env = ...`), and `also` (read by hand).
#[cfg(feature = "cli")]
pub fn check_program(command: &clap::Command, prefix: &str, also: &[&str]) -> Result<(), String> {
    fn read_by(command: &clap::Command) -> Vec<String> {
        command
            .get_arguments()
            .filter_map(|arg| arg.get_env())
            .map(|name| name.to_string_lossy().into_owned())
            .chain(command.get_subcommands().flat_map(read_by))
            .collect()
    }
    let mut known = read_by(command);
    known.extend(also.iter().map(|name| name.to_string()));
    known.sort();
    known.dedup();
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    let present: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    check(
        command.get_name(),
        prefix,
        &known,
        &[],
        present.iter().map(String::as_str),
    )
}

#[cfg(test)]
mod tests {
    use super::check;

    const KNOWN: &[&str] = &["VSAMFH_SERVER", "VSAMFH_TLS", "VSAMFH_TLS_CA"];
    const FAMILIES: &[&str] = &["VSAMFH_FILE_"];

    fn refused(var: &str) -> String {
        check("the bridge", "VSAMFH_", KNOWN, FAMILIES, [var])
            .unwrap_err()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_variable_not_read_is_refused_naming_the_one_meant() {
        assert_eq!(
            refused("VSAMFH_SEVER"),
            "VSAMFH_SEVER: the bridge reads no such variable (meant VSAMFH_SERVER?)"
        );
        assert_eq!(
            refused("VSAMFH_TLSCA"),
            "VSAMFH_TLSCA: the bridge reads no such variable (meant VSAMFH_TLS_CA?)"
        );
        assert_eq!(
            refused("VSAMFH_FLIE_ORDERS"),
            "VSAMFH_FLIE_ORDERS: the bridge reads no such variable (meant VSAMFH_FILE_ORDERS?)"
        );
        assert_eq!(
            refused("VSAMFH_COLOUR"),
            "VSAMFH_COLOUR: the bridge reads no such variable"
        );
        let whole = check("the bridge", "VSAMFH_", KNOWN, FAMILIES, ["VSAMFH_X"]).unwrap_err();
        assert!(
            whole.ends_with(
                "; it reads VSAMFH_SERVER, VSAMFH_TLS, VSAMFH_TLS_CA, VSAMFH_FILE_<NAME>"
            ),
            "{whole}"
        );
    }

    #[test]
    fn variables_read_and_other_programs_variables_pass() {
        let present = [
            "VSAMFH_SERVER",
            "VSAMFH_FILE_ORDERS",
            "VSAMFHX",
            "VSAMRD_LOG",
            "PATH",
            "VSAMFH_FILE_ÄÖ",
        ];
        assert_eq!(
            check("the bridge", "VSAMFH_", KNOWN, FAMILIES, present),
            Ok(())
        );
        // A name that is not ASCII is judged, not cut in a character.
        assert!(check("the bridge", "VSAMFH_", KNOWN, FAMILIES, ["VSAMFH_FÏLE_X"]).is_err());
    }
}
