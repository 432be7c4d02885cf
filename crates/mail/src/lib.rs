//! The mail of projects-api: one text and one HTML template per kind of
//! message (minijinja, compiled into the binary), and the two transports:
//! SMTP through `lettre` (`SMTP_URL`), or `.eml` files in a folder when no
//! SMTP server is configured.
//!
//! Each message's `Message-ID` is derived from the id of the job that sends
//! it, so that a retried delivery is recognisable as the same message (and
//! the `.eml` transport simply rewrites the same file).
//!
//! This crate holds no SQL and no HTTP: the job worker hands it a
//! [`Letter`] and a job id.

mod smtp_url;
mod templates;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use smtp_url::SmtpUrlError;

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// The kinds of message the service sends; each has its templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    /// A link to choose a new password.
    PasswordReset,
    /// A link to confirm the address given at registration.
    EmailVerification,
    /// A link, sent to the new address, to confirm an email change.
    EmailChange,
    /// A notice to the old address that the email was changed.
    EmailChanged,
}

impl MailKind {
    pub const ALL: [MailKind; 4] = [
        MailKind::PasswordReset,
        MailKind::EmailVerification,
        MailKind::EmailChange,
        MailKind::EmailChanged,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            MailKind::PasswordReset => "password_reset",
            MailKind::EmailVerification => "email_verification",
            MailKind::EmailChange => "email_change",
            MailKind::EmailChanged => "email_changed",
        }
    }

    /// The front-end path of the link this kind carries, if any.
    pub const fn link_path(self) -> Option<&'static str> {
        match self {
            MailKind::PasswordReset => Some("/reset-password"),
            MailKind::EmailVerification => Some("/verify-email"),
            MailKind::EmailChange => Some("/confirm-email-change"),
            MailKind::EmailChanged => None,
        }
    }

    fn subject(self) -> &'static str {
        match self {
            MailKind::PasswordReset => "Reset your password",
            MailKind::EmailVerification => "Confirm your email address",
            MailKind::EmailChange => "Confirm your new email address",
            MailKind::EmailChanged => "Your email address was changed",
        }
    }
}

/// How often a message is tried before its job is given up (with the
/// worker's backoff, from 10 s doubling: about 40 minutes in all).
pub const MAIL_ATTEMPTS: i32 = 8;

/// The job kind of a message to send; its payload is a [`MailJob`].
pub const MAIL_JOB_KIND: &str = "mail";

/// The payload of a mail job, as queued in the outbox. It carries a token
/// *id*, never a token: the worker derives the token (with the server's
/// secret) when it writes the link. `Debug` does not print the address.
#[derive(Clone, Serialize, Deserialize)]
pub struct MailJob {
    pub kind: MailKind,
    pub to: String,
    pub name: String,
    pub token_id: Option<Uuid>,
    pub valid_for: Option<String>,
}

impl std::fmt::Debug for MailJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailJob")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// One message to one person. `Debug` does not print the address or the
/// link (which carries a token).
#[derive(Clone, Serialize, Deserialize)]
pub struct Letter {
    pub kind: MailKind,
    pub to: String,
    pub name: String,
    /// The link the message carries, for the kinds that have one.
    pub link: Option<String>,
    /// How long the link is valid, in words ("30 minutes").
    pub valid_for: Option<String>,
}

impl std::fmt::Debug for Letter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Letter")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// What can go wrong; `Display` never carries an address or a link.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the recipient address is not valid")]
    InvalidRecipient,
    #[error("MAIL_FROM is not a valid mailbox: {0}")]
    InvalidFrom(String),
    #[error(transparent)]
    SmtpUrl(#[from] SmtpUrlError),
    #[error("a message could not be built: {0}")]
    Build(String),
    #[error("the SMTP server refused the message for good: {0}")]
    Rejected(String),
    #[error("the SMTP delivery failed: {0}")]
    Smtp(String),
    #[error("the message could not be written to the mail folder: {0}")]
    Write(#[from] std::io::Error),
}

impl MailError {
    /// Retrying cannot help: a bad recipient, a broken template, a 5xx.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            MailError::InvalidRecipient | MailError::Build(_) | MailError::Rejected(_)
        )
    }
}

/// What the mailer needs to know. `Debug` leaves the SMTP URL out: it may
/// hold a password.
#[derive(Clone)]
pub struct MailerConfig {
    /// `smtp://host:port`, `smtps://user:pass@host:465`; `None` writes
    /// `.eml` files into `dir` instead.
    pub smtp_url: Option<String>,
    /// The sender, `no-reply@example.com` or `Projects <no-reply@example.com>`.
    pub from: String,
    /// Where `.eml` files go without an SMTP server.
    pub dir: PathBuf,
}

impl std::fmt::Debug for MailerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            smtp_url,
            from,
            dir,
        } = self;
        f.debug_struct("MailerConfig")
            .field("smtp_url", &smtp_url.as_ref().map(|_| "[redacted]"))
            .field("from", from)
            .field("dir", dir)
            .finish()
    }
}

#[derive(Clone)]
enum Transport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        description: String,
    },
    Files(PathBuf),
}

/// Renders and sends messages. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    templates: templates::Templates,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("transport", &self.describe())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Checks the configuration (the sender, the SMTP URL) and builds the
    /// transport. Connects to nothing yet.
    pub fn new(config: &MailerConfig) -> Result<Self, MailError> {
        let from: Mailbox =
            config
                .from
                .parse()
                .map_err(|error: lettre::address::AddressError| {
                    MailError::InvalidFrom(error.to_string())
                })?;
        let transport = match &config.smtp_url {
            Some(url) => {
                let url = smtp_url::SmtpUrl::parse(url)?;
                Transport::Smtp {
                    description: url.describe(),
                    transport: url.transport(SMTP_TIMEOUT)?,
                }
            }
            None => Transport::Files(config.dir.clone()),
        };
        Ok(Self {
            transport,
            from,
            templates: templates::Templates::new(),
        })
    }

    /// Where mail goes, for the start-up log: never the password.
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Smtp { description, .. } => description.clone(),
            Transport::Files(dir) => format!(".eml files in {}", dir.display()),
        }
    }

    /// The folder `.eml` files go to, when that is the transport.
    pub fn mail_dir(&self) -> Option<&Path> {
        match &self.transport {
            Transport::Files(dir) => Some(dir),
            Transport::Smtp { .. } => None,
        }
    }

    /// Renders `letter` into a complete message whose `Message-ID` comes
    /// from `id` (the job's).
    pub fn render(&self, id: Uuid, letter: &Letter) -> Result<Message, MailError> {
        let address: Address = letter.to.parse().map_err(|_| MailError::InvalidRecipient)?;
        // lettre refuses line breaks in addresses and encodes the display
        // name (RFC 2047), but panics while formatting a name with a line
        // break in it: control characters become spaces first, so no header
        // can be smuggled in and no name can crash the worker.
        let name: String = letter
            .name
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let to = Mailbox::new(Some(name.clone()), address);
        let letter = Letter {
            name,
            ..letter.clone()
        };
        let (text, html) = self.templates.render(&letter)?;
        let domain = self.from.email.domain().to_owned();
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(letter.kind.subject())
            .message_id(Some(format!("<{id}@{domain}>")))
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|error| MailError::Build(error.to_string()))
    }

    /// Renders and delivers one message.
    pub async fn send(&self, id: Uuid, letter: &Letter) -> Result<(), MailError> {
        let message = self.render(id, letter)?;
        match &self.transport {
            Transport::Smtp { transport, .. } => match transport.send(message).await {
                Ok(_) => Ok(()),
                // The reply code only: a server's text may quote the address.
                Err(error) => {
                    let what = error.status().map_or_else(
                        || "no reply (connection, TLS or timeout)".to_owned(),
                        |code| format!("reply {code}"),
                    );
                    if error.is_permanent() {
                        Err(MailError::Rejected(what))
                    } else {
                        Err(MailError::Smtp(what))
                    }
                }
            },
            Transport::Files(dir) => write_eml(dir, id, &message.formatted()).await,
        }
    }
}

/// Writes `{id}.eml` whole or not at all (a temporary file, then a rename),
/// so that a reader never sees half a message.
async fn write_eml(dir: &Path, id: Uuid, bytes: &[u8]) -> Result<(), MailError> {
    tokio::fs::create_dir_all(dir).await?;
    let partial = dir.join(format!(".{id}.eml.partial"));
    tokio::fs::write(&partial, bytes).await?;
    tokio::fs::rename(&partial, dir.join(format!("{id}.eml"))).await?;
    Ok(())
}
