//! Which files of a configuration hold secrets or records, and which of
//! them every user of the machine may read (see
//! [`crate::security::exposed`]).

use super::Config;
use crate::runtime::objects::BucketSpec;
use crate::security::exposed;
use std::path::Path;

impl Config {
    /// The fields of the configuration that hold a secret: a database URL
    /// with its password, an object store's secret key.
    pub fn secret_fields(&self) -> Vec<String> {
        let mut fields = Vec::new();
        for (name, backend) in &self.backends {
            if backend
                .database
                .as_ref()
                .is_some_and(|url| url.holds_password())
            {
                fields.push(format!("backends.{name}.database"));
            }
            if let Some(BucketSpec::S3(s3)) = &backend.bucket
                && s3.secret_access_key.is_some()
            {
                fields.push(format!("backends.{name}.bucket.secret_access_key"));
            }
        }
        if let Some(table) = self.changes.stream.as_ref().and_then(|s| s.table.as_ref())
            && table.database.holds_password()
        {
            fields.push("changes.stream_database".into());
        }
        fields
    }

    /// What an operator is warned of at start, at each reload and by
    /// `check-config`: files others may read ([`Config::exposed_to_all`])
    /// and TLS certificates out of their time or near its end.
    pub fn warnings(&self, file: Option<&Path>) -> Vec<String> {
        let mut warnings = self.exposed_to_all(file);
        if let Some(tls) = &self.tls {
            warnings.extend(tls.validity_warnings(std::time::SystemTime::now()));
        }
        warnings
    }

    /// A warning for each file or directory holding a secret or records
    /// that every user of the machine may read: `file` (the configuration
    /// itself, when it holds [`Config::secret_fields`]), the TLS private
    /// key, the admin token, the data dir, and what holds records outside
    /// it (the change log's directory, backends' local stores). What is
    /// inside the data dir is as private as the data dir, which vsamrd
    /// makes 0700.
    pub fn exposed_to_all(&self, file: Option<&Path>) -> Vec<String> {
        let mut warnings = Vec::new();
        let fields = self.secret_fields();
        if let Some(file) = file
            && !fields.is_empty()
        {
            let secret = format!("secrets ({})", fields.join(", "));
            warnings.extend(exposed::warning(file, &secret));
        }
        if let Some(tls) = &self.tls {
            warnings.extend(exposed::warning(&tls.key, "the TLS private key"));
        }
        if self.admin.enabled {
            warnings.extend(exposed::warning(
                &self.admin.token_file,
                "the admin token (whoever reads it administers vsamrd)",
            ));
        }
        let data_dir = &self.server.data_dir;
        warnings.extend(exposed::warning(
            data_dir,
            "the datasets' records (vsamrd's data dir)",
        ));
        let outside = |path: &Path| !path.starts_with(data_dir);
        if outside(&self.changes.directory) {
            warnings.extend(exposed::warning(
                &self.changes.directory,
                "the change log of the datasets' records",
            ));
        }
        for (name, backend) in &self.backends {
            for store in backend.local_stores() {
                if outside(&store.path) {
                    warnings.extend(exposed::warning(
                        &store.path,
                        &format!("backend {name}'s records"),
                    ));
                }
            }
        }
        warnings
    }
}
