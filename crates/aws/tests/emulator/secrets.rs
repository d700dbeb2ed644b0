//! The registry password: by a dynamic reference in the template, never a stack parameter.

use super::support::assert_only_registry_secret_modified;
use super::support::stack_parameters;
use crate::common::{emulator_available, params, trucking, Clients, REGISTRY_PASSWORD};
use berth_aws::EnsureKind;
use secrecy::SecretString;

/// The registry password never travels as a stack parameter: Berth keeps it in the company's
/// secret and the template reads it by a dynamic reference pinned to a version id. Neither
/// the stack's parameters (DescribeStacks) nor its template (GetTemplate) hold it, the unit's
/// registry secret does, and a rotated password reaches that secret on the next update.
#[tokio::test]
async fn the_registry_password_reaches_the_unit_secret_by_reference_never_as_a_parameter() {
    if !emulator_available(
        "the_registry_password_reaches_the_unit_secret_by_reference_never_as_a_parameter",
    ) {
        return;
    }
    let clients = Clients::new().await;
    let stage = clients.stage();
    let unit = trucking();
    // Searched for as is, JSON-escaped, and by its tail (however often its quote was escaped).
    let tail = |password: &str| password[password.find('"').unwrap() + 1..].to_owned();
    let leaks = |text: &str, password: &str| {
        text.contains(password)
            || text.contains(&password.replace('"', "\\\""))
            || text.contains(&tail(password))
    };
    // What CloudFormation holds of the stack: its parameters and its template.
    let stack_text = |stack_id: String| {
        let cfn = clients.cloudformation.clone();
        async move {
            let parameters: Vec<(String, String)> = stack_parameters(&cfn, &stack_id).await;
            let template = cfn
                .get_template()
                .stack_name(&stack_id)
                .send()
                .await
                .unwrap()
                .template_body()
                .unwrap_or_default()
                .to_owned();
            (parameters, template)
        }
    };
    let version_of = |parameters: &[(String, String)]| {
        parameters
            .iter()
            .find(|(k, _)| k == "RegistryPasswordVersion")
            .map(|(_, v)| v.clone())
            .expect("the version parameter")
    };

    let created = stage
        .ensure_unit_stack(&unit, &params(), None)
        .await
        .unwrap();
    let (parameters, template) = stack_text(created.stack.stack_id.clone()).await;
    assert!(
        !leaks(&format!("{parameters:?}"), REGISTRY_PASSWORD),
        "the password is a stack parameter"
    );
    assert!(
        !leaks(&template, REGISTRY_PASSWORD),
        "the password is in the template"
    );
    assert!(template.contains(
        "{{resolve:secretsmanager:berth/${CompanySlug}/registry-password:SecretString:password_json::${RegistryPasswordVersion}}}"
    ));
    let first_version = version_of(&parameters);
    let source = clients
        .secretsmanager
        .describe_secret()
        .secret_id("berth/seaview/registry-password")
        .send()
        .await
        .unwrap();
    assert!(
        source
            .version_ids_to_stages()
            .and_then(|v| v.get(&first_version))
            .is_some_and(|stages| stages.iter().any(|s| s == "AWSCURRENT")),
        "the stack reads the company secret's current version"
    );
    let secrets = stage.read_unit_secrets(&created.outputs).await.unwrap();
    assert_eq!(secrets.registry.password.expose(), REGISTRY_PASSWORD);

    // The same password again: no new version, nothing to update.
    let again = stage
        .ensure_unit_stack(&unit, &params(), Some(&created.stack.stack_id))
        .await
        .unwrap();
    assert_eq!(again.kind, EnsureKind::Unchanged);

    // Rotation: a new version of the company's secret, and the update reads it.
    let rotated_password = "Rotated\"pull-Secret-93ab";
    let mut rotated = params();
    rotated.registry_password = SecretString::from(rotated_password.to_owned());
    let plan = stage
        .plan_unit_stack(&unit, &rotated, Some(&created.stack.stack_id))
        .await
        .unwrap();
    assert_only_registry_secret_modified(&plan);
    stage.apply_plan(&plan).await.unwrap();
    let (parameters, template) = stack_text(created.stack.stack_id.clone()).await;
    let text = format!("{parameters:?} {template}");
    assert!(!leaks(&text, REGISTRY_PASSWORD) && !leaks(&text, rotated_password));
    assert_ne!(version_of(&parameters), first_version);
    let secrets = stage.read_unit_secrets(&created.outputs).await.unwrap();
    assert_eq!(secrets.registry.password.expose(), rotated_password);
    assert_eq!(
        stage.desired_fingerprint(&unit, &rotated, None).unwrap(),
        stage.desired_fingerprint(&unit, &params(), None).unwrap(),
        "a rotated password does not void an approval"
    );
}
