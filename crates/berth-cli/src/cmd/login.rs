//! `login` and `logout`, as the docker CLI does them: the daemon checks the credentials
//! against the registry (`POST /auth`), the CLI keeps them in its config file
//! ([`crate::credentials`]) and sends them with every pull and push.

use std::io::{BufRead, Read, Write};

use berth_api::image::{AuthConfig, AuthResponse};
use berth_client::{Client, ClientError};

use crate::app::{LoginArgs, LogoutArgs};
use crate::credentials::{self, Login};
use crate::{CmdResult, Failure};

fn cred_err(e: credentials::CredentialsError) -> Failure {
    Failure::new(1, format!("Error: {e}"))
}

/// `POST /auth`; the identity token the daemon returned (empty when none).
async fn authenticate(c: &Client, login: &Login, server: &str) -> Result<String, ClientError> {
    let body = AuthConfig {
        username: login.username.clone(),
        password: login.password.clone(),
        server_address: server.to_string(),
        identity_token: login.identity_token.clone(),
        ..Default::default()
    };
    let r: AuthResponse = c.post_json("/auth", Some(&body)).await?;
    Ok(r.identity_token)
}

/// Stores the login (with the identity token, if the daemon returned one) and says so;
/// `warn` prints docker's note that the file is not encrypted.
fn save(
    path: &std::path::Path,
    key: &str,
    mut login: Login,
    token: String,
    warn: bool,
) -> CmdResult {
    if !token.is_empty() {
        login.identity_token = token;
    }
    let stored = credentials::store(path, key, &login).map_err(cred_err)?;
    if warn && stored == credentials::StoredIn::File {
        eprintln!(
            "\nWARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n",
            path.display()
        );
    }
    println!("Login Succeeded");
    Ok(0)
}

/// Reads one line from the terminal (the prompt goes to stdout, as docker's does).
fn prompt(text: &str, secret: bool) -> Result<String, Failure> {
    print!("{text}");
    let _ = std::io::stdout().flush();
    let line = if secret {
        crate::tty::read_secret_line()
    } else {
        let mut s = String::new();
        std::io::stdin().lock().read_line(&mut s).map(|_| s)
    }
    .map_err(|e| Failure::new(1, format!("Error: reading from the terminal: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

const NON_TTY: &str = "Error: Cannot perform an interactive login from a non TTY device";

pub async fn login(c: &Client, a: LoginArgs) -> CmdResult {
    if a.password.is_some() && a.password_stdin {
        return Err(Failure::new(
            1,
            "conflicting options: cannot specify both --password and --password-stdin",
        ));
    }
    if a.password_stdin && a.username.as_deref().unwrap_or("").is_empty() {
        return Err(Failure::new(
            1,
            "the --password-stdin option requires --username to be set",
        ));
    }
    let mut password = a.password.clone();
    if password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if a.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::new(1, format!("Error: reading the password from stdin: {e}")))?;
        password = Some(s.trim_end_matches(['\r', '\n']).to_string());
    }
    let key = credentials::server_key(a.server.as_deref());
    let path = credentials::config_path().map_err(cred_err)?;
    let stored = credentials::lookup(&path, &key).map_err(cred_err)?;

    // No credentials given: try the stored ones first (docker does the same).
    if a.username.is_none() && password.is_none() {
        if let Some(l) = stored.clone() {
            eprintln!(
                "Authenticating with existing credentials... [Username: {}]",
                l.username
            );
            match authenticate(c, &l, &key).await {
                Ok(token) => {
                    eprintln!("\n Info -> To login with a different account, run 'berth logout' followed by 'berth login'\n\n");
                    return save(&path, &key, l, token, false);
                }
                Err(e) if e.status() == Some(401) => {
                    eprintln!("Stored credentials invalid or expired")
                }
                Err(e) => eprintln!("Login did not succeed, error: {e}"),
            }
        }
    }

    let tty = crate::tty::stdin_is_tty();
    let username = match a.username.as_deref().map(str::trim) {
        Some(u) if !u.is_empty() => u.to_string(),
        _ => {
            if !tty {
                return Err(Failure::new(1, NON_TTY));
            }
            if key == credentials::INDEX_SERVER {
                println!("Log in with your Docker ID or email address to push and pull images from Docker Hub.");
            }
            let default = stored
                .as_ref()
                .map(|l| l.username.clone())
                .unwrap_or_default();
            let text = if default.is_empty() {
                "Username: ".to_string()
            } else {
                format!("Username ({default}): ")
            };
            let u = prompt(&text, false)?;
            let u = if u.trim().is_empty() { default } else { u };
            if u.trim().is_empty() {
                return Err(Failure::new(1, "Error: Non-null Username Required"));
            }
            u.trim().to_string()
        }
    };
    let password = match password {
        Some(p) => p,
        None => {
            if !tty {
                return Err(Failure::new(1, NON_TTY));
            }
            let p = prompt("Password: ", true)?;
            if p.is_empty() {
                return Err(Failure::new(1, "Error: Password Required"));
            }
            p
        }
    };
    let login = Login {
        username,
        password,
        identity_token: String::new(),
    };
    let token = authenticate(c, &login, &key).await?;
    save(&path, &key, login, token, true)
}

pub async fn logout(a: LogoutArgs) -> CmdResult {
    let key = credentials::server_key(a.server.as_deref());
    let mut keys = vec![key.clone()];
    if let Some(s) = a
        .server
        .as_deref()
        .filter(|_| key != credentials::INDEX_SERVER)
    {
        // the forms older clients stored the same registry under
        keys.extend([
            s.to_string(),
            format!("http://{key}"),
            format!("https://{key}"),
        ]);
    }
    let path = credentials::config_path().map_err(cred_err)?;
    println!("Removing login credentials for {key}");
    credentials::erase(&path, &keys).map_err(|e| {
        Failure::new(
            1,
            format!("WARNING: could not erase credentials:\n{key}: {e}"),
        )
    })?;
    Ok(0)
}
