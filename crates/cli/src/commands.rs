//! What each command does: the API calls and what is printed.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};

use crate::{
    api::Api,
    cli::{
        Command, EnvCommand, Format, History, HistoryCommand, HistoryFilter, Login, Out,
        RequestCommand, RunCommand, Wait,
    },
    config, output,
    wait::{self, Outcome},
};

/// Runs a command; the process's exit code.
pub async fn run(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Login(l) => login(l).await.map(|()| 0),
        Command::Logout => logout().map(|()| 0),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut crate::cli::Cli::command(),
                "berth",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
        Command::Whoami(out) => {
            let v = connect()?.get("/whoami", &[]).await?;
            print(out, &v, output::whoami);
            Ok(0)
        }
        Command::Env(c) => env(connect()?, c).await.map(|()| 0),
        Command::Request(c) => request(connect()?, c).await,
        Command::Run(c) => run_command(connect()?, c).await.map(|()| 0),
        Command::History(h) => history(connect()?, h).await.map(|()| 0),
    }
}

/// A client from BERTH_URL/BERTH_TOKEN or the stored credentials.
fn connect() -> anyhow::Result<Api> {
    let stored = config::load(&config::path()?)?;
    let creds = config::resolve(
        std::env::var("BERTH_URL").ok(),
        std::env::var("BERTH_TOKEN").ok(),
        stored,
    )?;
    Api::new(&creds.url, &creds.token)
}

/// Prints `v` as JSON or as `table` renders it.
fn print(out: Out, v: &Value, table: impl Fn(&Value) -> String) {
    match out.output {
        Format::Json => println!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
        Format::Table => println!("{}", table(v)),
    }
}

/// Reads one line from standard input (after `prompt` on standard error when it is a terminal).
fn ask(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{prompt}");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read standard input")?;
    Ok(line.trim().to_owned())
}

async fn login(l: Login) -> anyhow::Result<()> {
    let file = config::path()?;
    let stored = config::load(&file).ok().flatten();
    let url = match l.url {
        Some(u) => u,
        None => {
            let default = std::env::var("BERTH_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .or_else(|| stored.as_ref().map(|c| c.url.clone()));
            let answer = match &default {
                Some(d) => ask(&format!("Berth URL [{d}]: "))?,
                None => ask("Berth URL (e.g. https://berth.example.com): ")?,
            };
            match (answer.is_empty(), default) {
                (true, Some(d)) => d,
                _ => answer,
            }
        }
    };
    let url = config::normalize_url(&url)?;
    let raw = if !l.token_stdin && std::io::stdin().is_terminal() {
        rpassword::prompt_password("API token (berth_pat_… or berth_sat_…; not shown): ")
            .context("cannot read the token")?
    } else {
        ask("")?
    };
    let token = config::check_token(&raw)?;
    let who = Api::new(&url, &token)?
        .get("/whoami", &[])
        .await
        .context("the token was not accepted; nothing was stored")?;
    config::save(
        &file,
        &config::Credentials {
            url: url.clone(),
            token,
        },
    )?;
    eprintln!(
        "Logged in to {url} as {} (token {:?}, expires {}); stored in {}.",
        output::cell(&who["name"]),
        output::cell(&who["token"]["name"]),
        output::time(&who["token"]["expires_at"]),
        file.display()
    );
    if std::env::var_os("BERTH_TOKEN").is_some() {
        eprintln!("Note: BERTH_TOKEN is set and wins over the stored token.");
    }
    Ok(())
}

fn logout() -> anyhow::Result<()> {
    let file = config::path()?;
    if config::remove(&file)? {
        eprintln!("Removed {}.", file.display());
    } else {
        eprintln!("No stored credentials ({} does not exist).", file.display());
    }
    if std::env::var_os("BERTH_TOKEN").is_some() {
        eprintln!("Note: BERTH_TOKEN is still set in this shell.");
    }
    Ok(())
}

async fn env(api: Api, c: EnvCommand) -> anyhow::Result<()> {
    match c {
        EnvCommand::List {
            status,
            search,
            all,
            limit,
            after,
            out,
        } => {
            let mut query = Vec::new();
            if let Some(s) = status {
                query.push(("status", s));
            }
            if let Some(q) = search {
                query.push(("q", q));
            }
            let limit = limit.map(u32::from).unwrap_or(if all { 100 } else { 50 });
            query.push(("limit", limit.to_string()));
            let mut cursor = after;
            let mut items = Vec::new();
            loop {
                let mut q = query.clone();
                if let Some(c) = &cursor {
                    q.push(("after", c.clone()));
                }
                let page = api.get("/environments", &q).await?;
                if !all {
                    print(out, &page, |p| {
                        output::environments(p["items"].as_array().map_or(&[][..], Vec::as_slice))
                    });
                    if let (Format::Table, Some(next)) = (out.output, page["next"].as_str()) {
                        eprintln!("More: --after {next} (or --all).");
                    }
                    return Ok(());
                }
                items.extend(page["items"].as_array().cloned().unwrap_or_default());
                match page["next"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            print(out, &json!({ "items": items }), |p| {
                output::environments(p["items"].as_array().map_or(&[][..], Vec::as_slice))
            });
        }
        EnvCommand::Show { id, out } => {
            let e = api
                .get(&format!("/environments/{}", seg(&id)?), &[])
                .await?;
            print(out, &e, output::environment);
        }
    }
    Ok(())
}

/// A path segment from the command line: an id has no `/`, `?` or `#`.
fn seg(id: &str) -> anyhow::Result<&str> {
    let id = id.trim();
    if id.is_empty() || id.contains(['/', '?', '#', '%', ' ']) {
        bail!("{id:?} is not an id");
    }
    Ok(id)
}

/// Prints a request just made or decided and, with `--wait`, follows it: the exit code.
async fn made(api: &Api, request: Value, wait: Wait, out: Out) -> anyhow::Result<i32> {
    if !wait.wait {
        print(out, &request, output::request);
        return Ok(0);
    }
    if out.output == Format::Table {
        print(out, &request, output::request);
    }
    let id = output::cell(&request["id"]);
    let (outcome, last) = wait::follow(api, &id, &wait).await?;
    if out.output == Format::Json {
        print(out, &last, output::request);
    }
    // Ready was said as the request became so; the others get a last line.
    match outcome {
        Outcome::Ready | Outcome::TimedOut => {}
        o => eprintln!("Request {id} ended {}.", format!("{o:?}").to_lowercase()),
    }
    Ok(outcome.exit_code())
}

async fn request(api: Api, c: RequestCommand) -> anyhow::Result<i32> {
    match c {
        RequestCommand::Create {
            name,
            slug,
            owner,
            blueprint,
            size,
            description,
            wait,
            out,
        } => {
            let body = json!({
                "name": name, "slug": slug, "owner_contact": owner, "blueprint": blueprint,
                "size": size, "description": description.unwrap_or_default(),
            });
            let r = api.create("/requests", &body).await?;
            made(&api, r, wait, out).await
        }
        RequestCommand::Change {
            env_id,
            size,
            set,
            blueprint_version,
            description,
            owner,
            wait,
            out,
        } => {
            let mut body = Map::new();
            let mut put = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    body.insert(k.to_owned(), Value::String(v));
                }
            };
            put("size", size);
            put("blueprint_version", blueprint_version);
            put("description", description);
            put("owner_contact", owner);
            if !set.is_empty() {
                let overrides: Map<String, Value> = set
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                body.insert("overrides".into(), Value::Object(overrides));
            }
            let path = format!("/environments/{}/changes", seg(&env_id)?);
            let r = api.create(&path, &Value::Object(body)).await?;
            made(&api, r, wait, out).await
        }
        RequestCommand::Decommission {
            env_id,
            confirm,
            wait,
            out,
        } => {
            let path = format!("/environments/{}/decommission", seg(&env_id)?);
            let r = api.create(&path, &json!({ "confirm": confirm })).await?;
            made(&api, r, wait, out).await
        }
        RequestCommand::Show { id, wait, out } => {
            let r = api.get(&format!("/requests/{}", seg(&id)?), &[]).await?;
            made(&api, r, wait, out).await
        }
        RequestCommand::Plan { id, out } => {
            let p = api
                .get(&format!("/requests/{}/plan", seg(&id)?), &[])
                .await?;
            print(out, &p, output::plan);
            Ok(0)
        }
        RequestCommand::Approve {
            id,
            plan_hash,
            note,
            override_capacity,
            override_reason,
            wait,
            out,
        } => {
            let id = seg(&id)?;
            let hash = match plan_hash {
                Some(h) => h,
                None => current_hash(&api, id).await?,
            };
            let body = json!({
                "plan_hash": hash, "note": note.unwrap_or_default(),
                "override_capacity": override_capacity,
                "override_reason": override_reason.unwrap_or_default(),
            });
            let r = api
                .post(&format!("/requests/{id}/approve"), Some(&body), None)
                .await?;
            made(&api, r, wait, out).await
        }
        RequestCommand::Reject { id, reason, out } => {
            let r = api
                .post(
                    &format!("/requests/{}/reject", seg(&id)?),
                    Some(&json!({ "reason": reason })),
                    None,
                )
                .await?;
            print(out, &r, output::request);
            Ok(0)
        }
        RequestCommand::Withdraw { id, out } => {
            let r = api
                .post(&format!("/requests/{}/withdraw", seg(&id)?), None, None)
                .await?;
            print(out, &r, output::request);
            Ok(0)
        }
    }
}

/// The hash of the request's current plan, after showing the plan on standard error; waits
/// (up to two minutes) while the plan is still being computed.
async fn current_hash(api: &Api, id: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut said = false;
    loop {
        let plan = api
            .get_optional(&format!("/requests/{id}/plan"))
            .await?
            .with_context(|| format!("request {id} has no plan (or does not exist)"))?;
        match plan["status"].as_str() {
            Some("ready") => {
                eprintln!("{}", output::plan(&plan));
                let hash = plan["hash"]
                    .as_str()
                    .context("the ready plan has no hash")?
                    .to_owned();
                eprintln!("Approving the plan above ({hash}).");
                return Ok(hash);
            }
            Some("failed") => bail!(
                "request {id}'s plan failed: {} (an operator can have it computed again)",
                output::cell(&plan["error"])
            ),
            _ if tokio::time::Instant::now() >= deadline => {
                bail!("request {id}'s plan is still being computed; try again later")
            }
            _ => {
                if !said {
                    eprintln!("The plan is still being computed; waiting for it.");
                    said = true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}

async fn run_command(api: Api, c: RunCommand) -> anyhow::Result<()> {
    let (path, body, out) = match c {
        RunCommand::Show { run_id, out } => {
            let r = api.get(&format!("/runs/{}", seg(&run_id)?), &[]).await?;
            print(out, &r, output::run);
            return Ok(());
        }
        RunCommand::Retry {
            run_id,
            reason,
            out,
        } => (format!("/runs/{}/retry", seg(&run_id)?), reason, out),
        RunCommand::Cancel {
            run_id,
            reason,
            out,
        } => (format!("/runs/{}/cancel", seg(&run_id)?), reason, out),
    };
    let r = api
        .post(&path, Some(&json!({ "reason": body })), None)
        .await?;
    print(out, &r, output::run);
    Ok(())
}

fn filter_query(f: &HistoryFilter) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    for (k, v) in [("kind", &f.kind), ("from", &f.from), ("to", &f.to)] {
        if let Some(v) = v {
            q.push((k, v.clone()));
        }
    }
    q
}

async fn history(api: Api, h: History) -> anyhow::Result<()> {
    if let Some(HistoryCommand::Export {
        env_id,
        format,
        output,
        filter,
    }) = h.export
    {
        let mut q = filter_query(&filter);
        q.push(("format", format.as_str().to_owned()));
        let path = format!("/environments/{}/history/export", seg(&env_id)?);
        let res = api.get_response(&path, &q, None).await?;
        return export(res, output.as_deref()).await;
    }
    let env_id = h.env_id.context("give the environment's id")?;
    let path = format!("/environments/{}/history", seg(&env_id)?);
    let base = filter_query(&h.filter);
    let mut after = h.after;
    let mut events = Vec::new();
    loop {
        let mut q = base.clone();
        if let Some(a) = after {
            q.push(("after", a.to_string()));
        }
        let page = api.get(&path, &q).await?;
        if !h.all {
            print(h.out, &page, |p| {
                output::events(p["events"].as_array().map_or(&[][..], Vec::as_slice))
            });
            if let (Format::Table, Some(next)) = (h.out.output, page["next"].as_i64()) {
                eprintln!("More: --after {next} (or --all).");
            }
            return Ok(());
        }
        events.extend(page["events"].as_array().cloned().unwrap_or_default());
        match page["next"].as_i64() {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    print(h.out, &json!({ "events": events }), |p| {
        output::events(p["events"].as_array().map_or(&[][..], Vec::as_slice))
    });
    Ok(())
}

/// Streams an export's body to `file` (or standard output) as it arrives.
async fn export(mut res: reqwest::Response, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let mut sink: Box<dyn Write> = match file {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut bytes = 0usize;
    while let Some(chunk) = res
        .chunk()
        .await
        .context("the export stopped before its end")?
    {
        bytes += chunk.len();
        sink.write_all(&chunk).context("cannot write the export")?;
    }
    sink.flush().context("cannot write the export")?;
    if let Some(p) = file {
        eprintln!("Wrote {bytes} bytes to {}.", p.display());
    }
    Ok(())
}
