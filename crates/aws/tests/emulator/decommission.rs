//! Decommissioning: the stack deleted once, the secrets scheduled for deletion, and the proof.

use crate::common::{emulator_available, params, trucking, Clients};
use berth_aws::{AwsError, DeletionOutcome, UnitIdentity};

#[tokio::test]
async fn decommissioning_deletes_once_schedules_the_secrets_and_proves_it() {
    if !emulator_available("decommissioning_deletes_once_schedules_the_secrets_and_proves_it") {
        return;
    }
    let clients = Clients::new().await;
    let stage = clients.stage();
    let unit = trucking();
    // A neighbour whose slug starts like ours: none of this may touch it.
    let neighbour =
        UnitIdentity::parse("seaview", "SeaView", "trucking-2", "Trucking Two").unwrap();
    let created = stage
        .ensure_unit_stack(&unit, &params(), None)
        .await
        .unwrap();
    let other = stage
        .ensure_unit_stack(&neighbour, &params(), None)
        .await
        .unwrap();

    // The plan: what the deletion keeps, from the template.
    let retained = stage.retained_resources().unwrap();
    let kept: Vec<_> = retained.iter().map(|r| r.logical_id.as_str()).collect();
    assert!(
        kept.contains(&"DataBucket") && kept.contains(&"DatabaseSecret"),
        "{kept:?}"
    );
    assert!(!kept.contains(&"S3User"), "{kept:?}");

    // Secrets are not scheduled while the stack uses them; bad windows are refused.
    let err = stage
        .schedule_unit_secret_deletion(&unit, 7)
        .await
        .unwrap_err();
    assert!(matches!(err, AwsError::Precondition(_)), "{err:?}");
    for days in [0, 6, 31] {
        assert!(matches!(
            stage.schedule_unit_secret_deletion(&unit, days).await,
            Err(AwsError::InvalidInput(_))
        ));
    }

    // Delete, once.
    let deletion = stage.delete_unit_stack(&unit).await.unwrap();
    assert!(deletion.deleted_now(), "{deletion:?}");
    let again = stage.delete_unit_stack(&unit).await.unwrap();
    assert_eq!(again.outcome, DeletionOutcome::AlreadyGone);
    assert!(!again.deleted_now());

    // Not proven yet: the retained secrets are live.
    let proof = stage.prove_unit_removed(&unit).await.unwrap();
    assert!(!proof.passed, "{proof:?}");
    let failed: Vec<_> = proof.failed().map(|c| c.name.as_str()).collect();
    assert_eq!(failed.len(), 4, "{failed:?}");
    assert!(
        failed.contains(&"secret berth/seaview/trucking/database scheduled for deletion"),
        "{failed:?}"
    );
    assert!(proof.checks[0].passed, "{:?}", proof.checks[0]);

    // Schedule: every secret of the unit, with the window asked for.
    let scheduled = stage.schedule_unit_secret_deletion(&unit, 7).await.unwrap();
    let names: Vec<_> = scheduled.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "berth/seaview/trucking/database",
            "berth/seaview/trucking/oauth-client",
            "berth/seaview/trucking/registry",
            "berth/seaview/trucking/s3",
        ]
    );
    assert!(scheduled.iter().all(|s| s.scheduled_now), "{scheduled:?}");
    let in_a_week = std::time::SystemTime::now() + std::time::Duration::from_secs(7 * 86_400);
    let expected_day = aws_sdk_secretsmanager::primitives::DateTime::from(in_a_week)
        .fmt(aws_sdk_secretsmanager::primitives::DateTimeFormat::DateTime)
        .unwrap();
    assert!(
        scheduled
            .iter()
            .all(|s| s.deletion_date[..10] == expected_day[..10]),
        "deletion dates {scheduled:?}, expected the day {expected_day}"
    );
    assert!(stage.read_unit_secrets(&created.outputs).await.is_err());

    // A repeat changes nothing.
    let repeat = stage
        .schedule_unit_secret_deletion(&unit, 30)
        .await
        .unwrap();
    assert!(repeat.iter().all(|s| !s.scheduled_now), "{repeat:?}");
    let dates = |list: &[berth_aws::ScheduledSecret]| {
        list.iter()
            .map(|s| (s.arn.clone(), s.deletion_date.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(dates(&repeat), dates(&scheduled));

    // Proven, and the proof is an event payload.
    let proof = stage.prove_unit_removed(&unit).await.unwrap();
    assert!(proof.passed, "{proof:?}");
    assert_eq!(dates(&proof.secrets), dates(&scheduled));
    let json = serde_json::to_value(&proof).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["checks"].as_array().unwrap().len(), 2 + 4);
    assert!(json["retained"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["logical_id"] == "DataBucket"));

    // The neighbour is untouched.
    assert!(stage.read_unit_secrets(&other.outputs).await.is_ok());
    assert!(stage.find_unit_stack(&neighbour).await.unwrap().is_some());
    let neighbour_proof = stage.prove_unit_removed(&neighbour).await.unwrap();
    assert!(!neighbour_proof.passed);
}
