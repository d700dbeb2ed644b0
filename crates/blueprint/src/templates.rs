//! The `templates/` tree: every blueprint plus the values templates they use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::model::{Blueprint, BlueprintError, BlueprintErrorKind};
use crate::render::{RenderError, ValuesRenderer};

/// A loaded, validated `templates/` directory (`blueprints/*.yaml` and `values/*.j2`).
#[derive(Debug)]
pub struct Templates {
    root: PathBuf,
    blueprints: BTreeMap<String, Blueprint>,
    renderer: ValuesRenderer,
}

/// Why the templates directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TemplatesError {
    #[error(transparent)]
    Blueprint(#[from] BlueprintError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("{}: blueprint {name:?} is also defined in {}", file.display(), other.display())]
    DuplicateBlueprint {
        name: String,
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
        let mut blueprints: BTreeMap<String, Blueprint> = BTreeMap::new();
        for path in paths {
            let bp = Blueprint::load(&path, &values_dir)?;
            if let Some(other) = blueprints.get(bp.name()) {
                return Err(TemplatesError::DuplicateBlueprint {
                    name: bp.name().to_owned(),
                    file: path,
                    other: other.source().to_owned(),
                });
            }
            blueprints.insert(bp.name().to_owned(), bp);
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

    pub fn blueprint(&self, name: &str) -> Option<&Blueprint> {
        self.blueprints.get(name)
    }

    pub fn blueprints(&self) -> impl Iterator<Item = &Blueprint> {
        self.blueprints.values()
    }

    pub fn renderer(&self) -> &ValuesRenderer {
        &self.renderer
    }
}
