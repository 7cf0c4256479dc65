//! The fault tests' load: visitors voting back to back as people do through the pages,
//! each with its own cookie jar: the question's form, the vote (with the form's CSRF token
//! and vote id), the results page it redirects to. `examples/loadtest` sends one request
//! over and over, so it cannot carry a session and a form's token from one page to the
//! next; this does, on the same Tandem client, and records every exchange.
//!
//! A vote that fails is sent again, the same form, as a person presses "Vote" again: its
//! vote id makes it count once, so at the end the votes the database holds must be exactly
//! the votes the visitors saw acknowledged.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use tandem_client::{ClientSession, ClientTimeout, CookieJar, RequestBuilder};
use tokio::{sync::watch, task::JoinHandle};

use crate::support::{TIMEOUT, choices, csrf_token, form_action, vote_id, within};

/// How many visitors vote at once: fewer than the guide's nginx keeps idle connections
/// to the instances, so nginx reuses them rather than opening new ones all the time.
pub(crate) const VISITORS: usize = 8;

/// Each request's deadline: a request unanswered by then is a `timeout` failure, so a
/// hang shows in the figures rather than stalling the test.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The session cookie, as the deployment's config names it.
const SESSION_COOKIE: &str = "POLLS_SESSION";

/// Which page a request was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// `GET /poll/{id}`: the form.
    Form,
    /// `POST /poll/{id}/vote`.
    Vote,
    /// `GET /poll/{id}/results`, after a vote.
    Results,
}

/// One request and what came of it.
#[derive(Clone, Debug)]
pub(crate) struct Exchange {
    pub(crate) step: Step,
    pub(crate) started: Instant,
    pub(crate) took: Duration,
    /// The status, or the client's [`kind_name`](tandem_client::Error::kind_name) of the
    /// failure (`connect`, `disconnected`, `timeout`, ...).
    pub(crate) outcome: Result<u16, &'static str>,
    /// Which instance answered, from the test nginx's `X-Upstream`.
    pub(crate) upstream: Option<String>,
    /// The start of the body of an answer that is not a success, for the assertions.
    pub(crate) body: String,
}

impl Exchange {
    /// Answered with what the step expects: the page, or the vote's redirect.
    pub(crate) fn ok(&self) -> bool {
        let expected = if self.step == Step::Vote { 302 } else { 200 };
        self.outcome == Ok(expected)
    }

    /// What the figures count it under: `ok`, the status, or the failure's kind.
    fn kind(&self) -> String {
        match self.outcome {
            _ if self.ok() => "ok".to_owned(),
            Ok(status) => status.to_string(),
            Err(kind) => kind.to_owned(),
        }
    }

    /// A 503 with the site's own page: the clear answer, not a stack trace.
    pub(crate) fn is_clear_503(&self) -> bool {
        self.outcome == Ok(503) && self.body.contains("Back in a moment")
    }
}

#[derive(Default)]
struct Log {
    exchanges: Mutex<Vec<Exchange>>,
}

impl Log {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Exchange>> {
        self.exchanges.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The running load.
pub(crate) struct Load {
    log: Arc<Log>,
    recorded: watch::Receiver<usize>,
    stop: watch::Sender<bool>,
    visitors: Vec<JoinHandle<Visitor>>,
}

impl Load {
    /// [`VISITORS`] visitors on `base`, until [`stop`](Self::stop).
    pub(crate) fn start(base: &str) -> Load {
        let log = Arc::new(Log::default());
        let (recorded_tx, recorded) = watch::channel(0);
        let recorded_tx = Arc::new(recorded_tx);
        let (stop, stopped) = watch::channel(false);
        let visitors = (0..VISITORS)
            .map(|n| {
                let visitor = Visitor::new(n, base, Arc::clone(&log), Arc::clone(&recorded_tx));
                tokio::spawn(visitor.run(stopped.clone()))
            })
            .collect();
        Load { log, recorded, stop, visitors }
    }

    /// Waits until `count` exchanges that `matches` accepts have been recorded since this
    /// call, failing the test if that takes longer than [`TIMEOUT`].
    pub(crate) async fn wait_for(
        &mut self,
        what: &str,
        count: usize,
        matches: impl Fn(&Exchange) -> bool,
    ) {
        let mut seen = self.log.lock().len();
        let mut found = 0;
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            {
                let exchanges = self.log.lock();
                found += exchanges[seen..].iter().filter(|e| matches(e)).count();
                seen = exchanges.len();
            }
            if found >= count {
                return;
            }
            let changed = tokio::time::timeout_at(deadline, self.recorded.changed()).await;
            assert!(changed.is_ok(), "waited {TIMEOUT:?} for {what}: {found} of {count} seen");
        }
    }

    /// Stops the visitors after their current request and returns what they did.
    pub(crate) async fn stop(self) -> Report {
        self.stop.send_replace(true);
        let mut visitors = Vec::new();
        for visitor in self.visitors {
            visitors.push(within(visitor).await.expect("a visitor panicked"));
        }
        Report { log: self.log, visitors }
    }
}

/// A vote form as a visitor filled it in.
#[derive(Clone, Debug)]
struct Form {
    action: String,
    csrf_token: String,
    vote_id: String,
    choice: String,
}

/// One visitor: a browser with a cookie jar.
pub(crate) struct Visitor {
    number: usize,
    client: ClientSession,
    base: String,
    log: Arc<Log>,
    recorded: Arc<watch::Sender<usize>>,
    /// The vote ids acknowledged with the redirect to the results.
    acknowledged: Vec<String>,
    /// A vote sent but not acknowledged, to send again.
    pending: Option<Form>,
    /// Every session id the server set in this visitor's cookie: one, unless a session was
    /// lost and a new one made.
    sessions: BTreeSet<String>,
}

impl Visitor {
    fn new(number: usize, base: &str, log: Arc<Log>, recorded: Arc<watch::Sender<usize>>) -> Self {
        let client = ClientSession::builder()
            .cookie_jar(CookieJar::unsafe_hosts())
            .timeout(ClientTimeout::NONE.with_total(REQUEST_TIMEOUT))
            .build();
        Visitor {
            number,
            client,
            base: base.to_owned(),
            log,
            recorded,
            acknowledged: Vec::new(),
            pending: None,
            sessions: BTreeSet::new(),
        }
    }

    async fn run(mut self, stop: watch::Receiver<bool>) -> Visitor {
        let mut round = self.number;
        while !*stop.borrow() {
            round += 1;
            let form = match self.pending.take() {
                Some(form) => form,
                // The two seeded questions in turn, and each of their choices.
                None => match self.form(1 + round % 2, round / 2).await {
                    Some(form) => form,
                    None => continue,
                },
            };
            self.vote(form).await;
        }
        self
    }

    /// Opens a question's page and fills in its form.
    async fn form(&mut self, question: usize, pick: usize) -> Option<Form> {
        let url = format!("{}/poll/{question}", self.base);
        let page = self.send(Step::Form, self.client.get(&url)).await?;
        let options = choices(&page.1);
        Some(Form {
            action: form_action(&page.1),
            csrf_token: csrf_token(&page.1),
            vote_id: vote_id(&page.1),
            choice: options[pick % options.len()].clone(),
        })
    }

    /// Sends the form; on the redirect, the vote is acknowledged and the results read.
    async fn vote(&mut self, form: Form) {
        let fields = [
            ("csrf_token", form.csrf_token.as_str()),
            ("vote_id", &form.vote_id),
            ("choice", &form.choice),
        ];
        let request = self.client.post(&format!("{}{}", self.base, form.action)).form(&fields);
        let answer = self.send(Step::Vote, request.allow_redirects(false)).await;
        let Some((Some(results), _)) = answer else {
            self.pending = Some(form);
            return;
        };
        self.acknowledged.push(form.vote_id);
        self.send(Step::Results, self.client.get(&format!("{}{results}", self.base))).await;
    }

    /// Sends `request`, reads the answer whole and records the exchange. `Some` for the
    /// answer the step expects: the redirect's `Location` (for a vote) and the body.
    async fn send(
        &mut self,
        step: Step,
        request: RequestBuilder,
    ) -> Option<(Option<String>, String)> {
        let started = Instant::now();
        let (outcome, upstream, location, body) = match request.send().await {
            Err(err) => (Err(err.kind_name()), None, None, String::new()),
            Ok(mut resp) => {
                let header = |resp: &tandem_client::ClientResponse, name: &str| {
                    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
                };
                let (upstream, location) = (header(&resp, "x-upstream"), header(&resp, "location"));
                for cookie in resp.headers().get_all("set-cookie") {
                    let cookie = cookie.to_str().unwrap_or_default();
                    if let Some(value) = cookie.strip_prefix(&format!("{SESSION_COOKIE}=")) {
                        let id = value.split(';').next().unwrap_or_default();
                        self.sessions.insert(id.to_owned());
                    }
                }
                let status = resp.status().as_u16();
                match resp.text().await {
                    Ok(body) => (Ok(status), upstream, location, body),
                    Err(err) => (Err(err.kind_name()), upstream, None, String::new()),
                }
            }
        };
        let mut exchange = Exchange {
            step,
            started,
            took: started.elapsed(),
            outcome,
            upstream,
            body: String::new(),
        };
        let answer = if exchange.ok() {
            Some((location, body))
        } else {
            // Enough to tell the site's error page from anything else.
            exchange.body = body.chars().take(300).collect();
            None
        };
        let recorded = {
            let mut exchanges = self.log.lock();
            exchanges.push(exchange);
            exchanges.len()
        };
        self.recorded.send_replace(recorded);
        answer
    }
}

/// What the visitors did.
pub(crate) struct Report {
    log: Arc<Log>,
    visitors: Vec<Visitor>,
}

impl Report {
    /// Every exchange, in the order they ended.
    pub(crate) fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().clone()
    }

    /// Sends every vote still unacknowledged again until it is, as its visitor would: its
    /// vote id makes it count once whether or not it had been counted.
    pub(crate) async fn resend_pending(&mut self) {
        for visitor in &mut self.visitors {
            let deadline = Instant::now() + TIMEOUT;
            while let Some(form) = visitor.pending.take() {
                assert!(Instant::now() < deadline, "vote {} never acknowledged", form.vote_id);
                visitor.vote(form).await;
            }
        }
    }

    /// The vote ids acknowledged, over all visitors.
    pub(crate) fn acknowledged(&self) -> BTreeSet<String> {
        let ids = self.visitors.iter().flat_map(|v| v.acknowledged.iter().cloned());
        let ids: BTreeSet<String> = ids.collect();
        let total: usize = self.visitors.iter().map(|v| v.acknowledged.len()).sum();
        assert_eq!(ids.len(), total, "a vote id acknowledged twice");
        ids
    }

    /// The votes sent and never acknowledged.
    pub(crate) fn unacknowledged(&self) -> BTreeSet<String> {
        self.visitors.iter().filter_map(|v| v.pending.as_ref()).map(|f| f.vote_id.clone()).collect()
    }

    /// Each visitor's session ids: one each, unless a session was lost.
    pub(crate) fn sessions(&self) -> Vec<&BTreeSet<String>> {
        self.visitors.iter().map(|v| &v.sessions).collect()
    }

    /// The figures of the note: requests sent, acknowledged, failed by kind, votes.
    pub(crate) fn figures(&self, case: &str, counted: usize) -> Figures {
        let exchanges = self.log.lock();
        let mut outcomes = BTreeMap::new();
        for exchange in exchanges.iter() {
            *outcomes.entry(exchange.kind()).or_insert(0) += 1;
        }
        let ok = outcomes.remove("ok").unwrap_or(0);
        Figures {
            case: case.to_owned(),
            sent: exchanges.len(),
            ok,
            failed: outcomes,
            votes_acknowledged: self.visitors.iter().map(|v| v.acknowledged.len()).sum(),
            votes_counted: counted,
        }
    }
}

/// One case's line of the note's table.
pub(crate) struct Figures {
    case: String,
    sent: usize,
    ok: usize,
    failed: BTreeMap<String, usize>,
    votes_acknowledged: usize,
    votes_counted: usize,
}

impl Figures {
    /// The table's head, for a note.
    pub(crate) const HEAD: &str = "| case | requests sent | acknowledged | failed, by kind | \
                                    votes acknowledged | votes counted |\n|---|---|---|---|---|---|";
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed: Vec<String> = self.failed.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        let failed = if failed.is_empty() { "none".to_owned() } else { failed.join(", ") };
        write!(
            f,
            "| {} | {} | {} | {} | {} | {} |",
            self.case, self.sent, self.ok, failed, self.votes_acknowledged, self.votes_counted
        )
    }
}
