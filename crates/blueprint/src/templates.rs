//! The `templates/` tree: every blueprint plus the values templates they use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::model::{Blueprint, BlueprintError, BlueprintErrorKind};
use crate::render::{RenderError, ValuesRenderer};

/// A loaded, validated `templates/` directory (`blueprints/*.yaml` and `values/*.j2`).
///
/// `blueprints/` may hold several published versions of a blueprint, one file each (by
/// convention `<name>.yaml` for the first and `<name>-<version>.yaml` for later ones; the name
/// and version inside the file are what count).
#[derive(Debug)]
pub struct Templates {
    root: PathBuf,
    /// Every version of each blueprint, newest first (semantic version order).
    blueprints: BTreeMap<String, Vec<Blueprint>>,
    renderer: ValuesRenderer,
}

/// Why the templates directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TemplatesError {
    #[error(transparent)]
    Blueprint(#[from] BlueprintError),
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Two files publish the same version of a blueprint (versions equal in semantic-version
    /// precedence, e.g. `1.0.0` and `1.0.0+build`, count as the same).
    #[error("{}: blueprint {name:?} version {version} is also defined in {}", file.display(), other.display())]
    DuplicateBlueprint {
        name: String,
        version: String,
        file: PathBuf,
        other: PathBuf,
    },
}

impl Templates {
    /// Loads every blueprint under `root/blueprints` and compiles every values template under
    /// `root/values`; any invalid file fails the whole load (validate once, at start-up).
    pub fn open(root: &Path) -> Result<Self, TemplatesError> {
        let values_dir = root.join("values");
        let renderer = ValuesRenderer::from_dir(&values_dir)?;
        let bp_dir = root.join("blueprints");
        let io = |e| BlueprintError {
            file: bp_dir.clone(),
            line: None,
            kind: BlueprintErrorKind::Io(e),
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(&bp_dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                paths.push(path);
            }
        }
        paths.sort();
        let mut blueprints: BTreeMap<String, Vec<Blueprint>> = BTreeMap::new();
        for path in paths {
            let bp = Blueprint::load(&path, &values_dir)?;
            let versions = blueprints.entry(bp.name().to_owned()).or_default();
            if let Some(other) = versions
                .iter()
                .find(|o| o.semver().cmp_precedence(bp.semver()).is_eq())
            {
                return Err(TemplatesError::DuplicateBlueprint {
                    name: bp.name().to_owned(),
                    version: bp.version().to_owned(),
                    file: path,
                    other: other.source().to_owned(),
                });
            }
            versions.push(bp);
        }
        for versions in blueprints.values_mut() {
            versions.sort_by(|a, b| b.semver().cmp_precedence(a.semver()));
        }
        Ok(Self {
            root: root.to_owned(),
            blueprints,
            renderer,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The newest version of the blueprint called `name`.
    pub fn blueprint(&self, name: &str) -> Option<&Blueprint> {
        self.blueprints.get(name)?.first()
    }

    /// The blueprint called `name` at exactly `version` (as written in its file).
    pub fn blueprint_at(&self, name: &str, version: &str) -> Option<&Blueprint> {
        self.blueprints
            .get(name)?
            .iter()
            .find(|b| b.version() == version)
    }

    /// The published versions of the blueprint called `name`, newest first (semantic-version
    /// order: `1.10.0` before `1.9.0`, `1.0.0` before `1.0.0-rc.1`); empty for an unknown name.
    pub fn versions(&self, name: &str) -> Vec<String> {
        self.blueprints
            .get(name)
            .map(|v| v.iter().map(|b| b.version().to_owned()).collect())
            .unwrap_or_default()
    }

    /// The newest version of every blueprint, by name.
    pub fn blueprints(&self) -> impl Iterator<Item = &Blueprint> {
        self.blueprints.values().filter_map(|v| v.first())
    }

    pub fn renderer(&self) -> &ValuesRenderer {
        &self.renderer
    }
}
