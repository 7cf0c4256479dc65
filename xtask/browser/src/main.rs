//! `e2e-browser --webdriver URL --base URL`: a person's visit to the polls demo, in headless
//! Chromium driven over WebDriver (fantoccini, through chromedriver), as `cargo xtask e2e`
//! runs it.
//!
//! The visit: the question list, a question, a vote, the results page showing "1 vote", and
//! the question again, which the session remembers ("You voted for ...").

use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;

/// The longest one step (a navigation, a form post) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// How often a page is asked again for an element it does not have yet.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

type Result<T = ()> = std::result::Result<T, String>;

struct Args {
    webdriver: String,
    base: String,
}

fn parse_args() -> std::result::Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let (mut webdriver, mut base) = (None, None);
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("webdriver") => webdriver = Some(parser.value()?.string()?),
            Long("base") => base = Some(parser.value()?.string()?),
            _ => return Err(arg.unexpected()),
        }
    }
    let missing = |flag: &str| lexopt::Error::from(format!("missing --{flag} URL"));
    Ok(Args {
        webdriver: webdriver.ok_or_else(|| missing("webdriver"))?,
        base: base.ok_or_else(|| missing("base"))?.trim_end_matches('/').to_owned(),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("e2e-browser: {e}\nusage: e2e-browser --webdriver URL --base URL");
            return std::process::ExitCode::FAILURE;
        }
    };
    let browser = match connect(&args.webdriver).await {
        Ok(browser) => browser,
        Err(e) => {
            eprintln!("e2e-browser: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = vote(&browser, &args.base).await;
    // Closing the session ends Chromium and its helper processes; chromedriver would
    // otherwise leave them behind.
    if let Err(e) = browser.close().await {
        eprintln!("e2e-browser: closing the browser: {e}");
    }
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e2e-browser: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A new headless Chromium session. `--no-sandbox`: CI and dev machines here run as root,
/// where Chromium's sandbox refuses to start.
async fn connect(webdriver: &str) -> Result<Client> {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({ "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"] }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(webdriver)
        .await
        .map_err(|e| format!("could not open a Chromium session through {webdriver}: {e}"))
}

async fn vote(browser: &Client, base: &str) -> Result {
    browser.goto(&format!("{base}/")).await.map_err(|e| format!("open {base}/: {e}"))?;
    let first = wait_for(browser, "the question list", "ul.questions a").await?;
    println!("list: first question {:?}", text(&first).await?);
    first.click().await.map_err(|e| format!("follow the first question: {e}"))?;

    let choice = wait_for(browser, "the question page", "form input[name=choice]").await?;
    choice.click().await.map_err(|e| format!("pick a choice: {e}"))?;
    let form = browser.form(Locator::Css("form")).await.map_err(|e| format!("the form: {e}"))?;
    form.submit().await.map_err(|e| format!("submit the vote: {e}"))?;

    let mine = wait_for(browser, "the results page", "li.mine").await?;
    let url = browser.current_url().await.map_err(|e| e.to_string())?;
    let mine = text(&mine).await?;
    println!("results: {mine:?}");
    if !url.path().ends_with("/results") || !mine.ends_with("-- 1 vote") {
        return Err(format!("{url} shows {mine:?}, not the results page with one vote"));
    }

    // A fresh load of the question (not the history's copy of the page).
    let mut question = url.clone();
    question.set_path(url.path().trim_end_matches("/results"));
    browser.goto(question.as_str()).await.map_err(|e| format!("open {question}: {e}"))?;
    let voted = text(&wait_for(browser, "the question page again", "p.voted").await?).await?;
    println!("session: {voted:?}");
    if !voted.starts_with("You voted for") {
        return Err(format!("the session did not remember the vote: {voted:?}"));
    }
    Ok(())
}

/// Waits until the current page has an element for the CSS `selector`. A navigation in
/// flight is waited out by the WebDriver commands themselves; the poll is for the page's
/// own loading.
async fn wait_for(browser: &Client, what: &str, selector: &str) -> Result<Element> {
    browser
        .wait()
        .at_most(STEP_TIMEOUT)
        .every(POLL_INTERVAL)
        .for_element(Locator::Css(selector))
        .await
        .map_err(|e| format!("{what} ({selector}) did not appear within {STEP_TIMEOUT:?}: {e}"))
}

/// An element's text, its whitespace runs made single spaces.
async fn text(element: &Element) -> Result<String> {
    let text = element.text().await.map_err(|e| format!("read an element's text: {e}"))?;
    Ok(text.split_whitespace().collect::<Vec<_>>().join(" "))
}
