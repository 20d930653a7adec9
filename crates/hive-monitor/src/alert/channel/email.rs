//! [`EmailChannel`]: a plain-text and HTML email over SMTP, with lettre.

use std::{fmt, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
        extension::ClientId,
    },
};

use crate::alert::{
    channel::{DeliveryFuture, Notifier, Secret, chain, scrub},
    error::{AlertError, DeliveryError},
    types::{Alert, AlertStatus, Notification, figure_text, human, title_case},
};

/// How many [`timeout`](EmailChannelBuilder::timeout)s a whole delivery may take, from the
/// connect to `QUIT`.
///
/// lettre bounds only the TCP connect by the timeout; every later step (the TLS handshake,
/// the greeting, `EHLO`, `STARTTLS`, the login, each command of the message) would wait for
/// the server for as long as the connection stays open. A healthy dialogue takes a few
/// round trips of milliseconds each; three timeouts let a slow connect, a slow handshake and
/// a slow reply happen in one delivery, while a server that stops answering at any step is
/// given up on at most three timeouts after the delivery began.
const DIALOGUE_TIMEOUTS: u32 = 3;

/// How the connection to the SMTP server is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// TLS from the first byte ("SMTPS"; port 465 by default).
    ImplicitTls,
    /// A plain connection upgraded with `STARTTLS` before anything is sent; a server that
    /// does not offer it is refused (port 587 by default).
    StartTls,
    /// No encryption at all, for a relay on the same host or network (port 25 by
    /// default). Credentials, if set, travel in clear: use it with a local relay only.
    Plain,
}

impl SmtpSecurity {
    fn default_port(self) -> u16 {
        match self {
            Self::ImplicitTls => 465,
            Self::StartTls => 587,
            Self::Plain => 25,
        }
    }
}

/// Builds an [`EmailChannel`]; [`build`](Self::build) checks every setting.
#[must_use]
pub struct EmailChannelBuilder {
    host: String,
    port: Option<u16>,
    security: SmtpSecurity,
    username: Option<String>,
    password: Option<Secret>,
    from: Option<String>,
    to: Vec<String>,
    root_certificates: Vec<Vec<u8>>,
    timeout: Duration,
    hello_name: Option<String>,
}

impl EmailChannelBuilder {
    /// The server's port. Default: 465 for implicit TLS, 587 for STARTTLS, 25 for plain.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// How the connection is secured. Default [`SmtpSecurity::StartTls`].
    pub fn security(mut self, security: SmtpSecurity) -> Self {
        self.security = security;
        self
    }

    /// Authenticates as `username` with `password` (PLAIN or LOGIN, as the server offers).
    /// The password never shows in `Debug`, errors or logs.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self.password = Some(Secret::new(password));
        self
    }

    /// The sender (`Hive alerts <alerts@example.com>`). Required.
    pub fn from(mut self, mailbox: impl Into<String>) -> Self {
        self.from = Some(mailbox.into());
        self
    }

    /// Adds a recipient (`ops@example.com`). At least one is required.
    pub fn to(mut self, mailbox: impl Into<String>) -> Self {
        self.to.push(mailbox.into());
        self
    }

    /// Trusts this PEM certificate (a private CA, or the relay's own self-signed
    /// certificate) beside the webpki roots.
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    /// How long a delivery waits for the server. Default 10 s.
    ///
    /// The TCP connect may take at most `timeout`, and the whole delivery (the connect, the
    /// TLS handshake, the greeting, `EHLO`, `STARTTLS`, the login, the message and `QUIT`)
    /// at most three times `timeout`, however the time is spread over the steps: so no
    /// step waits longer than three times `timeout`, and a server that accepts the
    /// connection and then stops answering fails the delivery three timeouts after it
    /// began. Either limit fails it with [`DeliveryError::Timeout`] (naming the limit),
    /// which is retried like any failure to reach the server.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The name sent in `EHLO`. Default `[127.0.0.1]`.
    pub fn hello_name(mut self, name: impl Into<String>) -> Self {
        self.hello_name = Some(name.into());
        self
    }

    /// Checks the settings and builds the channel.
    pub fn build(self) -> Result<EmailChannel, AlertError> {
        if self.host.trim().is_empty() {
            return Err(AlertError::invalid("email.host", "is empty"));
        }
        if self.timeout.is_zero() {
            return Err(AlertError::invalid("email.timeout", "must be above zero"));
        }
        let from: Mailbox = self
            .from
            .as_deref()
            .ok_or_else(|| AlertError::invalid("email.from", "a sender is required"))?
            .parse()
            .map_err(|e| AlertError::invalid("email.from", format!("not a mailbox: {e}")))?;
        if self.to.is_empty() {
            return Err(AlertError::invalid(
                "email.to",
                "at least one recipient is required",
            ));
        }
        let to = self
            .to
            .iter()
            .map(|t| {
                t.parse::<Mailbox>().map_err(|e| {
                    AlertError::invalid("email.to", format!("`{t}` is not a mailbox: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let port = self.port.unwrap_or(self.security.default_port());
        let tls = match self.security {
            SmtpSecurity::Plain => Tls::None,
            security => {
                let mut parameters = TlsParameters::builder(self.host.clone());
                for pem in &self.root_certificates {
                    let certificate = Certificate::from_pem(pem).map_err(|e| {
                        AlertError::invalid("email.root_certificate_pem", e.to_string())
                    })?;
                    parameters = parameters.add_root_certificate(certificate);
                }
                let parameters = parameters
                    .build_rustls()
                    .map_err(|e| AlertError::invalid("email.security", e.to_string()))?;
                if security == SmtpSecurity::ImplicitTls {
                    Tls::Wrapper(parameters)
                } else {
                    Tls::Required(parameters)
                }
            }
        };
        let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(port)
            .tls(tls)
            .timeout(Some(self.timeout));
        if let Some(name) = &self.hello_name {
            transport = transport.hello_name(ClientId::Domain(name.clone()));
        }
        if let (Some(username), Some(password)) = (&self.username, &self.password) {
            transport = transport.credentials(Credentials::new(
                username.clone(),
                password.expose().to_owned(),
            ));
        }
        Ok(EmailChannel {
            transport: transport.build(),
            host: self.host,
            port,
            security: self.security,
            username: self.username,
            password: self.password,
            from,
            to,
            timeout: self.timeout,
            dialogue_timeout: self.timeout.saturating_mul(DIALOGUE_TIMEOUTS),
        })
    }
}

impl fmt::Debug for EmailChannelBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannelBuilder")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// Sends every notification as an email with a plain-text and an HTML part (multipart/
/// alternative), over SMTP with implicit TLS, STARTTLS, or in plain to a local relay.
///
/// The subject reads `[FIRING:3] model_unavailable (warning): a, b, c`; the body lists each
/// alert with what is wrong, its figures, since when, and the dashboard's link. The password
/// never shows in `Debug`, errors or logs.
///
/// ```
/// use hive_monitor::alert::{EmailChannel, SmtpSecurity};
///
/// let email = EmailChannel::builder("smtp.example.com")
///     .security(SmtpSecurity::StartTls)
///     .credentials("alerts", "an app password")
///     .from("Hive alerts <alerts@example.com>")
///     .to("ops@example.com")
///     .build()?;
/// assert!(!format!("{email:?}").contains("an app password"));
/// # Ok::<(), hive_monitor::alert::AlertError>(())
/// ```
#[derive(Clone)]
pub struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    host: String,
    port: u16,
    security: SmtpSecurity,
    username: Option<String>,
    password: Option<Secret>,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// The bound of the TCP connect (lettre's).
    timeout: Duration,
    /// The bound of the whole delivery: [`DIALOGUE_TIMEOUTS`] × `timeout`.
    dialogue_timeout: Duration,
}

impl EmailChannel {
    /// The longest one delivery may take (three times the builder's `timeout`): an
    /// attempt timeout set around the channel should be at least this.
    pub fn delivery_timeout(&self) -> Duration {
        self.dialogue_timeout
    }

    /// A builder for a channel through the SMTP server at `host`.
    pub fn builder(host: impl Into<String>) -> EmailChannelBuilder {
        EmailChannelBuilder {
            host: host.into(),
            port: None,
            security: SmtpSecurity::StartTls,
            username: None,
            password: None,
            from: None,
            to: Vec::new(),
            root_certificates: Vec::new(),
            timeout: Duration::from_secs(10),
            hello_name: None,
        }
    }

    /// The subject of the email for `notification`.
    pub fn subject(notification: &Notification) -> String {
        format!("{}: {}", notification.title, notification.subjects(5))
    }

    /// The plain-text body for `notification`.
    pub fn text_body(notification: &Notification) -> String {
        let n = notification;
        let mut text = format!(
            "{} — {} firing, {} resolved (severity {})\n\n",
            title_case(&n.group),
            n.firing,
            n.resolved,
            n.severity
        );
        for alert in &n.alerts {
            text.push_str(&format!(
                "* [{}] {}\n  {}\n",
                alert.status.as_str().to_uppercase(),
                alert.subject,
                alert.summary
            ));
            text.push_str(&format!("  {}\n", when(alert)));
            text.push_str(&format!(
                "  severity: {}{}\n",
                alert.severity,
                if alert.escalated { " (escalated)" } else { "" }
            ));
            for (name, value) in &alert.figures {
                let (label, value) = figure_text(name, *value);
                text.push_str(&format!("  {label}: {value}\n"));
            }
            text.push('\n');
        }
        if let Some(url) = &n.dashboard_url {
            text.push_str(&format!("Dashboard: {url}\n"));
        }
        text.push_str(&format!(
            "\n-- \nhive-resilience, rule {}, notification {}\n",
            n.group, n.id
        ));
        text
    }

    /// The HTML body for `notification` (every text escaped).
    pub fn html_body(notification: &Notification) -> String {
        let n = notification;
        let mut html = String::from(
            "<!DOCTYPE html><html><body style=\"font-family:sans-serif;font-size:14px\">",
        );
        html.push_str(&format!(
            "<h2>{} — {} firing, {} resolved</h2><p>Severity <b>{}</b></p>",
            escape(&title_case(&n.group)),
            n.firing,
            n.resolved,
            n.severity
        ));
        html.push_str(
            "<table cellpadding=\"6\" style=\"border-collapse:collapse\" border=\"1\">\
             <tr><th>Status</th><th>Subject</th><th>What</th><th>When</th><th>Figures</th></tr>",
        );
        for alert in &n.alerts {
            let colour = match alert.status {
                AlertStatus::Firing => "#b00020",
                AlertStatus::Resolved => "#1b7f3b",
            };
            let figures: Vec<String> = alert
                .figures
                .iter()
                .map(|(name, value)| {
                    let (label, value) = figure_text(name, *value);
                    format!("{}: {}", escape(&label), escape(&value))
                })
                .collect();
            html.push_str(&format!(
                "<tr><td style=\"color:{colour}\"><b>{}</b>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                alert.status.as_str().to_uppercase(),
                if alert.escalated { " (escalated)" } else { "" },
                escape(&alert.subject.to_string()),
                escape(&alert.summary),
                escape(&when(alert)),
                figures.join("<br>")
            ));
        }
        html.push_str("</table>");
        if let Some(url) = &n.dashboard_url {
            html.push_str(&format!(
                "<p><a href=\"{}\">Open the dashboard</a></p>",
                escape(url)
            ));
        }
        html.push_str(&format!(
            "<p style=\"color:#666\">hive-resilience · rule {} · notification {}</p></body></html>",
            escape(&n.group),
            escape(&n.id)
        ));
        html
    }

    fn message(&self, notification: &Notification) -> Result<Message, DeliveryError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(Self::subject(notification));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                Self::text_body(notification),
                Self::html_body(notification),
            ))
            .map_err(|e| DeliveryError::Build {
                reason: e.to_string(),
            })
    }

    fn secrets(&self) -> Vec<&str> {
        self.password.iter().map(Secret::expose).collect()
    }
}

fn when(alert: &Alert) -> String {
    match (alert.status, alert.ended_at) {
        (AlertStatus::Resolved, Some(ended)) => format!(
            "from {} to {} ({})",
            alert.started_at,
            ended,
            human(alert.duration)
        ),
        _ => format!("since {} ({})", alert.started_at, human(alert.duration)),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

impl Notifier for EmailChannel {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let message = self.message(notification)?;
            // lettre bounds the TCP connect alone: the whole dialogue is bounded here.
            let sent = tokio::time::timeout(self.dialogue_timeout, self.transport.send(message));
            match sent.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) if e.is_timeout() => Err(DeliveryError::Timeout(self.timeout)),
                Ok(Err(e)) => Err(DeliveryError::Smtp {
                    reason: scrub(&chain(&e), &self.secrets()),
                    permanent: e.is_permanent(),
                }),
                Err(_) => Err(DeliveryError::Timeout(self.dialogue_timeout)),
            }
        })
    }
}

impl fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannel")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("from", &self.from.to_string())
            .field(
                "to",
                &self.to.iter().map(ToString::to_string).collect::<Vec<_>>(),
            )
            .finish()
    }
}
