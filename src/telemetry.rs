//! Logging set-up: `tracing` to stderr, filtered by `RUST_LOG` or the config's `log.level`.

use tracing_subscriber::filter::Directive;
use tracing_subscriber::EnvFilter;

/// The AWS SDK logs requests and response bodies at debug and trace level, and a
/// Secrets Manager response body is a database password: those crates never log below
/// info, whatever the filter asks for.
const QUIET: &[&str] = &[
    "aws_config=info",
    "aws_sdk_secretsmanager=info",
    "aws_sigv4=info",
    "aws_smithy_runtime=info",
    "aws_smithy_http_client=info",
    "aws_smithy_runtime_api=info",
    "aws_runtime=info",
    "hyper=info",
    "hyper_util=info",
];

pub fn filter(level: &str) -> EnvFilter {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    QUIET
        .iter()
        .filter_map(|d| d.parse::<Directive>().ok())
        .fold(filter, EnvFilter::add_directive)
}

pub fn init(level: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(level))
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn aws_crates_stay_at_info_even_under_trace() {
        let f = super::filter("trace").to_string();
        assert!(f.contains("aws_smithy_runtime=info"), "{f}");
        assert!(f.contains("trace"), "{f}");
    }
}
