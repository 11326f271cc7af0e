//! The irsa-doctor container, one per mode, from the embedded
//! `template/irsa-doctor.yaml`: the one source of truth that the manifests
//! in `examples/k8s/` are tested against (injector/tests/template.rs).

use k8s_openapi::api::core::v1::Container;
use serde::Deserialize;

/// The template file, embedded so that the binary needs nothing beside it.
pub const TEMPLATE_YAML: &str = include_str!("../template/irsa-doctor.yaml");

/// The name of the injected container; a pod that has a container of this
/// name already has the doctor (idempotence keys on it).
pub const CONTAINER_NAME: &str = "irsa-doctor";

/// The container for each mode, as the template file gives it.
#[derive(Debug, Clone, Deserialize)]
pub struct Template {
    /// `serve` as a native sidecar.
    pub sidecar: Container,
    /// `check` as an init container.
    pub init: Container,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("the container template is not valid YAML for two containers")]
    Parse(#[source] serde_saphyr::Error),
    #[error("the container template's {0} container is not named irsa-doctor")]
    Name(&'static str),
}

impl Template {
    /// The embedded template. An error here is a bug in the file, which the
    /// unit test below catches before any release.
    pub fn embedded() -> Result<Self, TemplateError> {
        Self::parse(TEMPLATE_YAML)
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let template: Template = serde_saphyr::from_str(text).map_err(TemplateError::Parse)?;
        if template.sidecar.name != CONTAINER_NAME {
            return Err(TemplateError::Name("sidecar"));
        }
        if template.init.name != CONTAINER_NAME {
            return Err(TemplateError::Name("init"));
        }
        Ok(template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_template_parses_into_both_modes() {
        let t = Template::embedded().unwrap();
        assert_eq!(t.sidecar.restart_policy.as_deref(), Some("Always"));
        assert_eq!(t.sidecar.args, Some(vec!["serve".to_owned()]));
        assert_eq!(t.init.restart_policy, None);
        assert_eq!(t.init.args, Some(vec!["check".to_owned()]));
    }
}
