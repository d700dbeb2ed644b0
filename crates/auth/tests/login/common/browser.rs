//! A browser without JavaScript, enough to sign in at the provider and read where it redirects.

use berth_auth::{CallbackParams, Url};

use super::REDIRECT_URI;

/// A browser without JavaScript: keeps cookies, follows nothing by itself.
pub struct Browser {
    http: reqwest::Client,
}

/// Where a trip through the provider ended.
#[derive(Debug)]
pub enum Outcome {
    /// The provider redirected to Berth's callback with these parameters.
    Callback(CallbackParams),
    /// The provider showed its login form again (status, page).
    LoginRejected(u16, String),
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("browser client"),
        }
    }

    /// GET `url` and follow redirects until Berth's callback or a page (status, final URL, body).
    pub async fn navigate(&self, url: Url) -> Result<(u16, Url, String), CallbackParams> {
        self.follow(self.http.get(url.clone()).send().await.expect("GET"), url)
            .await
    }

    async fn follow(
        &self,
        mut resp: reqwest::Response,
        mut url: Url,
    ) -> Result<(u16, Url, String), CallbackParams> {
        for _ in 0..10 {
            if !resp.status().is_redirection() {
                let status = resp.status().as_u16();
                return Ok((status, url, resp.text().await.expect("body")));
            }
            let location = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .expect("redirect with Location");
            url = url.join(location).expect("valid Location");
            if url.as_str().starts_with(REDIRECT_URI) {
                return Err(callback_params(&url));
            }
            resp = self.http.get(url.clone()).send().await.expect("GET");
        }
        panic!("too many redirects, last at {url}");
    }

    /// Opens the authorization URL, expects the provider's login form, and submits it.
    pub async fn sign_in(&self, authorize_url: &Url, username: &str, password: &str) -> Outcome {
        let (status, page_url, html) = match self.navigate(authorize_url.clone()).await {
            Ok(page) => page,
            Err(params) => return Outcome::Callback(params),
        };
        assert_eq!(status, 200, "login page expected at {page_url}:\n{html}");
        for text in [
            "<label for=\"username\">Username</label>",
            "<label for=\"password\">Password</label>",
            ">Sign in</button>",
        ] {
            assert!(html.contains(text), "login form lacks {text}:\n{html}");
        }
        self.submit_login(&page_url, username, password).await
    }

    /// Posts the login form of the interaction page at `page_url`.
    pub async fn submit_login(&self, page_url: &Url, username: &str, password: &str) -> Outcome {
        let action = page_url
            .join(&format!("{}/login", page_url.path()))
            .expect("action URL");
        let resp = self
            .http
            .post(action.clone())
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .expect("POST login");
        match self.follow(resp, action).await {
            Err(params) => Outcome::Callback(params),
            Ok((status, _, html)) => Outcome::LoginRejected(status, html),
        }
    }

    /// Presses "Cancel" on the login page at `page_url`.
    pub async fn cancel(&self, page_url: &Url) -> CallbackParams {
        let action = page_url
            .join(&format!("{}/abort", page_url.path()))
            .expect("action URL");
        let resp = self
            .http
            .post(action.clone())
            .send()
            .await
            .expect("POST abort");
        self.follow(resp, action)
            .await
            .expect_err("redirect to the callback")
    }

    /// Posts a form of a page (the provider's logout confirmation).
    pub async fn post_form(&self, url: Url, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(url).form(fields).send().await.expect("POST")
    }
}

pub fn callback_params(url: &Url) -> CallbackParams {
    let get = |name: &str| query_param(url, name);
    CallbackParams {
        code: get("code"),
        state: get("state"),
        iss: get("iss"),
        error: get("error"),
        error_description: get("error_description"),
    }
}

pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
