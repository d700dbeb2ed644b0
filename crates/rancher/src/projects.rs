//! Projects and namespaces (Norman `/v3`): read-only lookups, and "ensure" calls that look
//! (through the same lookups) before they create, then wait for `active`.

use reqwest::Method;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::client::RancherClient;
use crate::error::RancherError;
use crate::http::Idempotency;
use crate::wire::{encode_component, string_at};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// `c-xxxxx:p-yyyyy`.
    pub id: String,
    pub name: String,
    pub cluster_id: String,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub project_id: Option<String>,
    pub state: String,
}

/// The earliest `created` (RFC 3339, so text order is time order); on a tie the first listed.
fn oldest<'a>(projects: impl IntoIterator<Item = &'a Value>) -> Option<&'a Value> {
    // `min_by_key` returns the first of equal minima.
    projects
        .into_iter()
        .min_by_key(|p| string_at(p, &["created"]))
}

impl RancherClient {
    fn parse_project(p: &Value) -> Project {
        Project {
            id: string_at(p, &["id"]),
            name: string_at(p, &["name"]),
            cluster_id: string_at(p, &["clusterId"]),
            state: string_at(p, &["state"]),
        }
    }

    /// The project called `name` in the cluster, without creating anything. Project names are
    /// not unique: when several match, the oldest (by `created`) wins, the one
    /// [`ensure_project`](Self::ensure_project) keeps using. The cluster id is not checked (an
    /// unknown one has no projects): resolve it with `find_cluster` first.
    #[tracing::instrument(skip_all, fields(cluster_id = %cluster_id, project = %name))]
    pub async fn find_project(
        &self,
        cluster_id: &str,
        name: &str,
    ) -> Result<Option<Project>, RancherError> {
        let list = format!(
            "/v3/projects?clusterId={}&name={}",
            encode_component(cluster_id),
            encode_component(name)
        );
        let found = self.get(&list).await?;
        Ok(oldest(found["data"].as_array().into_iter().flatten()).map(Self::parse_project))
    }

    /// Finds the project by name in the cluster ([`find_project`](Self::find_project)'s rule),
    /// creates it only when there is none, and waits until it is `active`.
    #[tracing::instrument(skip_all, fields(cluster_id = %cluster_id, project = %name))]
    pub async fn ensure_project(
        &self,
        cluster_id: &str,
        name: &str,
        description: &str,
    ) -> Result<Project, RancherError> {
        let project = match self.find_project(cluster_id, name).await? {
            Some(p) => p,
            None => {
                tracing::info!("creating project");
                let body = json!({"type": "project", "name": name, "clusterId": cluster_id, "description": description});
                let a = self
                    .http
                    .send(
                        Method::POST,
                        "/v3/projects",
                        Some(&body),
                        Idempotency::Unsafe,
                    )
                    .await?;
                Self::parse_project(&a.json("/v3/projects")?)
            }
        };
        if project.state == "active" {
            return Ok(project);
        }
        let path = format!("/v3/projects/{}", encode_component(&project.id));
        let deadline = Instant::now() + self.cfg.activation_timeout;
        loop {
            let p = Self::parse_project(&self.get(&path).await?);
            if p.state == "active" {
                return Ok(p);
            }
            if Instant::now() >= deadline {
                return Err(RancherError::Deadline {
                    what: format!("project {} to become active (state {})", p.id, p.state),
                    waited: self.cfg.activation_timeout,
                });
            }
            tokio::time::sleep(self.cfg.poll_interval).await;
        }
    }

    fn parse_namespace(v: &Value) -> Namespace {
        Namespace {
            name: string_at(v, &["name"]),
            project_id: v["projectId"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            state: string_at(v, &["state"]),
        }
    }

    fn namespace_path(cluster_id: &str, name: &str) -> String {
        format!(
            "/v3/clusters/{}/namespaces/{}",
            encode_component(cluster_id),
            encode_component(name)
        )
    }

    /// The namespace called `name` in the cluster, with its project, without creating
    /// anything. A 403 stays an error rather than `None`: it means the namespace exists but the
    /// token cannot see it (yet — right after creation), so "it does not exist" would be wrong.
    /// The cluster id is not checked (Rancher answers 404 for an unknown cluster too): resolve
    /// it with `find_cluster` first.
    #[tracing::instrument(skip_all, fields(cluster_id = %cluster_id, namespace = %name))]
    pub async fn find_namespace(
        &self,
        cluster_id: &str,
        name: &str,
    ) -> Result<Option<Namespace>, RancherError> {
        Ok(self
            .get_opt(&Self::namespace_path(cluster_id, name))
            .await?
            .map(|v| Self::parse_namespace(&v)))
    }

    /// Ensures the namespace exists in the project (creating or moving it) and is `active`.
    /// A 403 right after creation (RBAC lag) is treated as pending.
    #[tracing::instrument(skip_all, fields(cluster_id = %cluster_id, namespace = %name))]
    pub async fn ensure_namespace(
        &self,
        cluster_id: &str,
        project_id: &str,
        name: &str,
    ) -> Result<Namespace, RancherError> {
        let path = Self::namespace_path(cluster_id, name);
        let deadline = Instant::now() + self.cfg.activation_timeout;
        let mut ns = match self.find_namespace(cluster_id, name).await {
            Ok(found) => found,
            Err(e) if e.status() == Some(403) => None,
            Err(e) => return Err(e),
        };
        if ns.is_none() {
            tracing::info!("creating namespace");
            let body = json!({"type": "namespace", "name": name, "projectId": project_id});
            let create = format!("/v3/clusters/{}/namespaces", encode_component(cluster_id));
            match self
                .http
                .send(Method::POST, &create, Some(&body), Idempotency::Unsafe)
                .await
            {
                Ok(a) => ns = Some(Self::parse_namespace(&a.json(&create)?)),
                // Created concurrently (or by our own timed-out attempt): read it below.
                Err(e) if e.status() == Some(409) => {}
                Err(e) => return Err(e),
            }
        }
        loop {
            let current = match ns.take() {
                Some(n) => Some(n),
                None => match self.find_namespace(cluster_id, name).await {
                    Ok(found) => found,
                    Err(e) if e.status() == Some(403) && Instant::now() < deadline => None,
                    Err(e) => return Err(e),
                },
            };
            if let Some(n) = current {
                if n.project_id.as_deref() != Some(project_id) {
                    tracing::info!(from = ?n.project_id, "moving namespace into the project");
                    let body = json!({"projectId": project_id});
                    self.http
                        .send(
                            Method::POST,
                            &format!("{path}?action=move"),
                            Some(&body),
                            Idempotency::Safe,
                        )
                        .await?;
                } else if n.state == "active" {
                    return Ok(n);
                }
            }
            if Instant::now() >= deadline {
                return Err(RancherError::Deadline {
                    what: format!("namespace {name} to become active in project {project_id}"),
                    waited: self.cfg.activation_timeout,
                });
            }
            tokio::time::sleep(self.cfg.poll_interval).await;
        }
    }

    /// The project with this id (`c-xxxxx:p-yyyyy`), `None` when there is none (404).
    pub async fn get_project(&self, project_id: &str) -> Result<Option<Project>, RancherError> {
        let path = format!("/v3/projects/{}", encode_component(project_id));
        Ok(self.get_opt(&path).await?.map(|v| Self::parse_project(&v)))
    }

    /// Deletes a namespace and waits until it is gone (Kubernetes removes what is in it, Helm
    /// releases included). Idempotent: a namespace already gone is fine.
    #[tracing::instrument(skip_all, fields(cluster_id = %cluster_id, namespace = %name))]
    pub async fn delete_namespace(&self, cluster_id: &str, name: &str) -> Result<(), RancherError> {
        let path = Self::namespace_path(cluster_id, name);
        match self
            .http
            .send(Method::DELETE, &path, None, Idempotency::Safe)
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        }
        let deadline = Instant::now() + self.cfg.activation_timeout;
        while let Some(ns) = self.find_namespace(cluster_id, name).await? {
            if Instant::now() >= deadline {
                return Err(RancherError::Deadline {
                    what: format!("namespace {name} to be removed (state {})", ns.state),
                    waited: self.cfg.activation_timeout,
                });
            }
            tokio::time::sleep(self.cfg.poll_interval).await;
        }
        Ok(())
    }

    /// Deletes a project (through its `remove` link) and waits until it is gone; Rancher
    /// removes its namespaces with it. Idempotent: a project already gone is fine.
    pub async fn delete_project(&self, project_id: &str) -> Result<(), RancherError> {
        let path = format!("/v3/projects/{}", encode_component(project_id));
        match self
            .http
            .send(Method::DELETE, &path, None, Idempotency::Safe)
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        }
        let deadline = Instant::now() + self.cfg.activation_timeout;
        while self.get_opt(&path).await?.is_some() {
            if Instant::now() >= deadline {
                return Err(RancherError::Deadline {
                    what: format!("project {project_id} to be removed"),
                    waited: self.cfg.activation_timeout,
                });
            }
            tokio::time::sleep(self.cfg.poll_interval).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_project_wins_and_ties_keep_rancher_order() {
        let listed = json!([
            {"id": "c:p-new", "created": "2024-05-02T10:00:00Z"},
            {"id": "c:p-old", "created": "2024-05-01T09:00:00Z"},
            {"id": "c:p-tie", "created": "2024-05-01T09:00:00Z"},
        ]);
        let all = listed.as_array().unwrap();
        assert_eq!(oldest(all).unwrap()["id"], "c:p-old");
        assert_eq!(oldest(&all[2..]).unwrap()["id"], "c:p-tie");
        assert!(oldest(&[]).is_none());
    }
}
