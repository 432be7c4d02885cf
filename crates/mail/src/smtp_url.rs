//! `SMTP_URL`: `smtp://[user:pass@]host[:port][?tls=none|starttls]` and
//! `smtps://[user:pass@]host[:port]` (TLS from the first byte, port 465 by
//! default). On the submission port, 587, STARTTLS is required unless the URL
//! says otherwise; on other ports (25, a local catcher's 1025) the
//! conversation stays plain unless `?tls=starttls` asks for it.

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use url::Url;

const SUBMISSION_PORT: u16 = 587;

/// Why `SMTP_URL` was refused; never prints the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpUrlError {
    #[error("SMTP_URL is not a URL")]
    NotAUrl,
    #[error("SMTP_URL must start with smtp:// or smtps://")]
    Scheme,
    #[error("SMTP_URL has no host")]
    NoHost,
    #[error("SMTP_URL's tls= must be none or starttls")]
    TlsMode,
    #[error("SMTP_URL has a user name that is not valid percent-encoded UTF-8")]
    Credentials,
    #[error("TLS cannot be set up for the SMTP host: {0}")]
    Tls(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Security {
    Plain,
    StartTls,
    Wrapper,
}

pub(crate) struct SmtpUrl {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<(String, String)>,
}

impl SmtpUrl {
    pub(crate) fn parse(raw: &str) -> Result<Self, SmtpUrlError> {
        let url = Url::parse(raw).map_err(|_| SmtpUrlError::NotAUrl)?;
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or(SmtpUrlError::NoHost)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tls = url
            .query_pairs()
            .find(|(key, _)| key == "tls")
            .map(|(_, value)| value.into_owned());
        let (port, security) = match url.scheme() {
            "smtps" => (url.port().unwrap_or(465), Security::Wrapper),
            "smtp" => {
                let port = url.port().unwrap_or(SUBMISSION_PORT);
                let security = match tls.as_deref() {
                    Some("none") => Security::Plain,
                    Some("starttls") => Security::StartTls,
                    Some(_) => return Err(SmtpUrlError::TlsMode),
                    None if port == SUBMISSION_PORT => Security::StartTls,
                    None => Security::Plain,
                };
                (port, security)
            }
            _ => return Err(SmtpUrlError::Scheme),
        };
        let credentials = if url.username().is_empty() {
            None
        } else {
            let decode = |text: &str| percent_decode(text).ok_or(SmtpUrlError::Credentials);
            Some((
                decode(url.username())?,
                decode(url.password().unwrap_or_default())?,
            ))
        };
        Ok(Self {
            host,
            port,
            security,
            credentials,
        })
    }

    pub(crate) fn describe(&self) -> String {
        let security = match self.security {
            Security::Plain => "plain",
            Security::StartTls => "STARTTLS",
            Security::Wrapper => "TLS",
        };
        format!("SMTP to {}:{} ({security})", self.host, self.port)
    }

    pub(crate) fn transport(
        &self,
        timeout: Duration,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, SmtpUrlError> {
        let parameters = || {
            TlsParameters::new(self.host.clone())
                .map_err(|error| SmtpUrlError::Tls(error.to_string()))
        };
        let tls = match self.security {
            Security::Plain => Tls::None,
            Security::StartTls => Tls::Required(parameters()?),
            Security::Wrapper => Tls::Wrapper(parameters()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some((user, password)) = &self.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(builder.build())
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_ports_and_tls_modes() {
        let url = SmtpUrl::parse("smtp://mail.example.com").unwrap();
        assert_eq!((url.port, url.security), (587, Security::StartTls));
        let url = SmtpUrl::parse("smtp://localhost:1025").unwrap();
        assert_eq!((url.port, url.security), (1025, Security::Plain));
        let url = SmtpUrl::parse("smtp://localhost:587?tls=none").unwrap();
        assert_eq!(url.security, Security::Plain);
        let url = SmtpUrl::parse("smtp://localhost:25?tls=starttls").unwrap();
        assert_eq!(url.security, Security::StartTls);
        let url = SmtpUrl::parse("smtps://user%40x:p%3Ass@mail.example.com").unwrap();
        assert_eq!((url.port, url.security), (465, Security::Wrapper));
        assert_eq!(
            url.credentials,
            Some(("user@x".to_owned(), "p:ss".to_owned()))
        );
        assert!(!url.describe().contains("p:ss"));
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        assert_eq!(
            SmtpUrl::parse("mail.example.com").err(),
            Some(SmtpUrlError::NotAUrl)
        );
        assert_eq!(
            SmtpUrl::parse("http://x:25").err(),
            Some(SmtpUrlError::Scheme)
        );
        assert_eq!(
            SmtpUrl::parse("smtp://x:25?tls=maybe").err(),
            Some(SmtpUrlError::TlsMode)
        );
    }
}
