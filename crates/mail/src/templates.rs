//! The templates, compiled into the binary: `{kind}.txt` and `{kind}.html`
//! for every [`MailKind`]. HTML escapes every value; text does not.

use std::sync::Arc;

use minijinja::{AutoEscape, Environment, context};

use crate::{Letter, MailError};

const SOURCES: [(&str, &str); 8] = [
    (
        "password_reset.txt",
        include_str!("../templates/password_reset.txt"),
    ),
    (
        "password_reset.html",
        include_str!("../templates/password_reset.html"),
    ),
    (
        "email_verification.txt",
        include_str!("../templates/email_verification.txt"),
    ),
    (
        "email_verification.html",
        include_str!("../templates/email_verification.html"),
    ),
    (
        "email_change.txt",
        include_str!("../templates/email_change.txt"),
    ),
    (
        "email_change.html",
        include_str!("../templates/email_change.html"),
    ),
    (
        "email_changed.txt",
        include_str!("../templates/email_changed.txt"),
    ),
    (
        "email_changed.html",
        include_str!("../templates/email_changed.html"),
    ),
];

#[derive(Clone)]
pub(crate) struct Templates(Arc<Environment<'static>>);

impl Templates {
    pub(crate) fn new() -> Self {
        let mut environment = Environment::new();
        environment.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        for (name, source) in SOURCES {
            environment
                .add_template(name, source)
                .expect("the compiled-in templates parse (a unit test checks them)");
        }
        Self(Arc::new(environment))
    }

    /// The text and the HTML body of `letter`.
    pub(crate) fn render(&self, letter: &Letter) -> Result<(String, String), MailError> {
        let values = context! {
            name => letter.name,
            link => letter.link,
            valid_for => letter.valid_for,
        };
        let render = |extension: &str| {
            let name = format!("{}.{extension}", letter.kind.as_str());
            self.0
                .get_template(&name)
                .and_then(|template| template.render(&values))
                .map_err(|error| MailError::Build(error.to_string()))
        };
        Ok((render("txt")?, render("html")?))
    }
}

/// Every kind has both templates.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::MailKind;

    #[test]
    fn every_kind_renders_and_html_is_escaped() {
        let templates = Templates::new();
        for kind in MailKind::ALL {
            let letter = Letter {
                kind,
                to: "ada@example.com".into(),
                name: "<b>Ada</b> & co".into(),
                link: Some("https://app.example/x?token=abc".into()),
                valid_for: Some("30 minutes".into()),
            };
            let (text, html) = templates.render(&letter).unwrap();
            assert!(text.contains("<b>Ada</b> & co"), "{text}");
            assert!(
                html.contains("&lt;b&gt;Ada&lt;&#x2f;b&gt; &amp; co"),
                "{html}"
            );
            assert!(!html.contains("<b>Ada"), "{html}");
            if kind != MailKind::EmailChanged {
                assert!(text.contains("https://app.example/x?token=abc"), "{text}");
                assert!(text.contains("30 minutes"), "{text}");
            }
        }
    }
}
