//! Instance refreshes: rolling an Auto Scaling Group onto a launch-template version, keeping the
//! stack's preferences (by default launch before terminate).
//!
//! The new version goes in the refresh's desired configuration rather than into the group first:
//! AWS only rolls back (auto-rollback) when a desired configuration is given, it rolls back to
//! what the group held before the refresh, and it writes the desired configuration to the group
//! itself once the refresh succeeds. So a failed or rolled-back refresh leaves the group on its
//! old version, and the next plan sees it behind its template and rolls out again.
//!
//! A refresh someone else started is waited for, never cancelled, and never run alongside a
//! second one: Auto Scaling allows one per group.

use aws_sdk_autoscaling::types::{
    DesiredConfiguration, InstanceRefresh as AwsRefresh, InstanceRefreshStatus,
    LaunchTemplateSpecification, RefreshPreferences, RefreshStrategy,
};
use infra_core::model::InstanceRefresh;
use infra_core::provider::Context;
use infra_core::{Address, ProviderError};

use crate::support::{api_error, error_code, wait_for, Poll};
use crate::AwsProvider;

/// How often a refresh started by someone else may get in the way of starting ours.
const START_ATTEMPTS: usize = 3;

/// Start an instance refresh of `group_name` onto `template` (an explicit version number) with
/// `prefs` and, unless `ctx.no_wait`, wait until it succeeds; AWS then pins the group to
/// `template`. A refresh that fails, is cancelled or rolls back is an error carrying AWS's
/// status reason.
pub(super) async fn roll_out(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    group_name: &str,
    template: &LaunchTemplateSpecification,
    prefs: &InstanceRefresh,
) -> Result<(), ProviderError> {
    let mut attempt = 0;
    let id = loop {
        attempt += 1;
        if let Some(other) = active(p, group_name).await? {
            match other
                .instance_refresh_id()
                .filter(|_| rolls_onto(&other, template))
            {
                // Ours: the answer to our start was lost, and the SDK's retry was refused.
                Some(id) => break id.to_string(),
                None => wait_for_other(p, ctx, address, group_name, &other).await?,
            }
        }
        match start(p, group_name, template, prefs).await {
            Ok(id) => break id,
            Err(err)
                if error_code(&err) == Some("InstanceRefreshInProgress")
                    && attempt < START_ATTEMPTS =>
            {
                tracing::debug!(group = %group_name, "a refresh started meanwhile; waiting for it");
            }
            Err(err) => return Err(err),
        }
    };
    tracing::debug!(group = %group_name, refresh = %id, "instance refresh started");
    if ctx.no_wait {
        ctx.progress.waiting(
            address,
            &format!("instance refresh {id} started (not waiting for it)"),
            std::time::Duration::ZERO,
        );
        return Ok(());
    }
    wait_for(
        ctx.progress,
        address,
        "refreshed",
        p.options.wait_timeout,
        || async {
            let refresh = describe_one(p, group_name, &id).await?;
            let status = refresh.status().cloned();
            match status {
                Some(InstanceRefreshStatus::Successful) => Ok(Poll::Ready(())),
                Some(
                    s @ (InstanceRefreshStatus::Failed
                    | InstanceRefreshStatus::Cancelled
                    | InstanceRefreshStatus::RollbackSuccessful
                    | InstanceRefreshStatus::RollbackFailed),
                ) => Err(ProviderError::Api {
                    operation: "autoscaling:InstanceRefresh".into(),
                    code: s.as_str().into(),
                    message: refresh
                        .status_reason()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("instance refresh {id} ended {}", s.as_str())),
                }),
                _ => Ok(Poll::Pending(progress(&refresh))),
            }
        },
    )
    .await
}

/// Whether a refresh in this status still holds the group.
fn is_active(status: Option<&InstanceRefreshStatus>) -> bool {
    matches!(
        status,
        Some(
            InstanceRefreshStatus::Pending
                | InstanceRefreshStatus::InProgress
                | InstanceRefreshStatus::Cancelling
                | InstanceRefreshStatus::RollbackInProgress
                | InstanceRefreshStatus::Baking
        )
    )
}

/// Whether `refresh` rolls the group onto exactly `template` (the same template and version).
fn rolls_onto(refresh: &AwsRefresh, template: &LaunchTemplateSpecification) -> bool {
    refresh
        .desired_configuration()
        .and_then(|d| d.launch_template())
        .is_some_and(|t| {
            let same = |a: Option<&str>, b: Option<&str>| a.is_some() && a == b;
            t.version() == template.version()
                && (same(t.launch_template_id(), template.launch_template_id())
                    || same(t.launch_template_name(), template.launch_template_name()))
        })
}

/// `InProgress 40%, 1 instance left`.
fn progress(refresh: &AwsRefresh) -> String {
    let status = refresh.status().map_or("Pending", |s| s.as_str());
    let mut out = format!("{status} {}%", refresh.percentage_complete().unwrap_or(0));
    if let Some(left) = refresh.instances_to_update() {
        let plural = if left == 1 { "" } else { "s" };
        out.push_str(&format!(", {left} instance{plural} left"));
    }
    out
}

/// The group's refresh that is still running, if any (Auto Scaling lists newest first).
async fn active(p: &AwsProvider, group_name: &str) -> Result<Option<AwsRefresh>, ProviderError> {
    let found = p
        .asg
        .describe_instance_refreshes()
        .auto_scaling_group_name(group_name)
        .send()
        .await
        .map_err(|e| api_error("autoscaling:DescribeInstanceRefreshes", e))?;
    Ok(found
        .instance_refreshes()
        .iter()
        .find(|r| is_active(r.status()))
        .cloned())
}

async fn describe_one(
    p: &AwsProvider,
    group_name: &str,
    id: &str,
) -> Result<AwsRefresh, ProviderError> {
    let found = p
        .asg
        .describe_instance_refreshes()
        .auto_scaling_group_name(group_name)
        .instance_refresh_ids(id)
        .send()
        .await
        .map_err(|e| api_error("autoscaling:DescribeInstanceRefreshes", e))?;
    found
        .instance_refreshes()
        .iter()
        .find(|r| r.instance_refresh_id() == Some(id))
        .cloned()
        .ok_or_else(|| {
            ProviderError::Other(format!(
                "instance refresh {id} of group {group_name} is missing from DescribeInstanceRefreshes"
            ))
        })
}

/// Wait until a refresh someone else started has ended, however it ended.
async fn wait_for_other(
    p: &AwsProvider,
    ctx: &Context<'_>,
    address: &Address,
    group_name: &str,
    other: &AwsRefresh,
) -> Result<(), ProviderError> {
    let id = other.instance_refresh_id().unwrap_or_default().to_string();
    tracing::debug!(group = %group_name, refresh = %id, "waiting for a refresh already in progress");
    wait_for(
        ctx.progress,
        address,
        "free of the instance refresh already in progress",
        p.options.wait_timeout,
        || async {
            let refresh = describe_one(p, group_name, &id).await?;
            Ok(if is_active(refresh.status()) {
                Poll::Pending(format!(
                    "instance refresh {id} already in progress: {}",
                    progress(&refresh)
                ))
            } else {
                Poll::Ready(())
            })
        },
    )
    .await
}

async fn start(
    p: &AwsProvider,
    group_name: &str,
    template: &LaunchTemplateSpecification,
    prefs: &InstanceRefresh,
) -> Result<String, ProviderError> {
    let percent = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let preferences = RefreshPreferences::builder()
        .min_healthy_percentage(percent(prefs.min_healthy_percentage))
        .max_healthy_percentage(percent(prefs.max_healthy_percentage))
        .set_instance_warmup(prefs.instance_warmup_seconds.map(percent))
        .skip_matching(prefs.skip_matching)
        .auto_rollback(prefs.auto_rollback)
        .build();
    let desired = DesiredConfiguration::builder()
        .launch_template(template.clone())
        .build();
    let started = p
        .asg
        .start_instance_refresh()
        .auto_scaling_group_name(group_name)
        .strategy(RefreshStrategy::Rolling)
        .desired_configuration(desired)
        .preferences(preferences)
        .send()
        .await
        .map_err(|e| api_error("autoscaling:StartInstanceRefresh", e))?;
    started
        .instance_refresh_id()
        .map(str::to_string)
        .ok_or_else(|| {
            ProviderError::Other(format!(
                "StartInstanceRefresh for group {group_name} returned no refresh id"
            ))
        })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::sync::{Mutex, OnceLock};
    use std::time::Duration;

    use aws_config::BehaviorVersion;
    use infra_core::provider::{Progress, Resolved};
    use infra_tests::refresh_double::{DesiredTemplate, Preferences, RefreshDouble, RefreshScript};
    use infra_tests::Emulator;

    use super::*;
    use crate::AwsOptions;

    fn emulator() -> &'static Emulator {
        static EMULATOR: OnceLock<Emulator> = OnceLock::new();
        EMULATOR.get_or_init(Emulator::start)
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Progress for Recorder {
        fn waiting(&self, _: &Address, status: &str, _: Duration) {
            self.0.lock().unwrap().push(status.to_string());
        }
    }

    async fn provider(double: &RefreshDouble) -> AwsProvider {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new("ap-northeast-2"))
            .endpoint_url(double.endpoint())
            .credentials_provider(aws_sdk_autoscaling::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        AwsProvider::from_config(&config, AwsOptions::default())
    }

    /// Roll out group `g` through a double following `script`.
    async fn run(
        script: RefreshScript,
        prefs: &InstanceRefresh,
        no_wait: bool,
    ) -> (Result<(), ProviderError>, RefreshDouble, Vec<String>) {
        let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], emulator().port()));
        let double = RefreshDouble::start(upstream, script);
        let p = provider(&double).await;
        let recorder = Recorder::default();
        let resolved = Resolved::default();
        let ctx = Context {
            stack: "refresh-unit",
            region: "ap-northeast-2",
            resolved: &resolved,
            progress: &recorder,
            no_wait,
        };
        let address = Address::from_str("autoscaling_group.api").unwrap();
        let template = LaunchTemplateSpecification::builder()
            .launch_template_id("lt-0abc")
            .version("3")
            .build();
        let result = roll_out(&p, &ctx, &address, "g", &template, prefs).await;
        let statuses = recorder.0.into_inner().unwrap();
        (result, double, statuses)
    }

    #[tokio::test]
    async fn starts_one_refresh_with_the_preferences_and_waits_for_success() {
        let prefs = InstanceRefresh {
            min_healthy_percentage: 90,
            max_healthy_percentage: 150,
            instance_warmup_seconds: Some(60),
            skip_matching: false,
            auto_rollback: true,
        };
        let (result, double, statuses) = run(RefreshScript::succeed_after(2), &prefs, false).await;
        result.unwrap();
        let starts = double.starts();
        assert_eq!(starts.len(), 1);
        assert_eq!(starts[0].group, "g");
        assert_eq!(starts[0].strategy.as_deref(), Some("Rolling"));
        assert_eq!(
            starts[0].desired_template,
            Some(DesiredTemplate {
                id: Some("lt-0abc".into()),
                name: None,
                version: Some("3".into()),
            })
        );
        assert_eq!(
            starts[0].preferences,
            Preferences {
                min_healthy_percentage: Some(90),
                max_healthy_percentage: Some(150),
                instance_warmup: Some(60),
                skip_matching: Some(false),
                auto_rollback: Some(true),
            }
        );
        assert_eq!(
            statuses,
            [
                "InProgress 0%, 2 instances left",
                "InProgress 50%, 1 instance left"
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_refresh_is_an_error_with_the_reason() {
        let reason = "Instances failed to pass health checks";
        let (result, _, _) = run(
            RefreshScript::fail(reason),
            &InstanceRefresh::default(),
            false,
        )
        .await;
        match result.unwrap_err() {
            ProviderError::Api {
                operation,
                code,
                message,
            } => {
                assert_eq!(operation, "autoscaling:InstanceRefresh");
                assert_eq!(code, "Failed");
                assert_eq!(message, reason);
            }
            other => panic!("expected an API error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_rolled_back_refresh_is_an_error() {
        let (result, _, _) = run(
            RefreshScript::roll_back("Health checks failed; rolled back"),
            &InstanceRefresh::default(),
            false,
        )
        .await;
        let err = result.unwrap_err().to_string();
        assert_eq!(
            err,
            "autoscaling:InstanceRefresh: RollbackSuccessful: Health checks failed; rolled back"
        );
    }

    #[tokio::test]
    async fn a_refresh_in_progress_is_waited_for_not_fought() {
        let (result, double, statuses) = run(
            RefreshScript::in_progress_already(),
            &InstanceRefresh::default(),
            false,
        )
        .await;
        result.unwrap();
        assert_eq!(double.starts().len(), 1);
        let calls = double.calls();
        assert!(!calls.iter().any(|c| c.starts_with("Cancel")), "{calls:?}");
        // The one start comes after the other refresh was seen to end.
        let start = calls.iter().position(|c| c.starts_with("Start")).unwrap();
        assert!(start >= 3, "{calls:?}");
        assert!(
            statuses[0].starts_with("instance refresh other-1 already in progress: InProgress"),
            "{statuses:?}"
        );
    }

    #[tokio::test]
    async fn a_start_whose_answer_was_lost_is_found_and_waited_for_not_started_again() {
        let (result, double, statuses) = run(
            RefreshScript::succeed_after(2).losing_the_first_start_answer(),
            &InstanceRefresh::default(),
            false,
        )
        .await;
        result.unwrap();
        assert_eq!(double.starts().len(), 1, "{:?}", double.calls());
        assert!(
            !statuses.iter().any(|s| s.contains("already in progress")),
            "{statuses:?}"
        );
        assert_eq!(
            statuses.last().map(String::as_str),
            Some("InProgress 50%, 1 instance left")
        );
    }

    #[tokio::test]
    async fn a_refusal_to_start_is_waited_out_too() {
        let (result, double, statuses) = run(
            RefreshScript::in_progress_from_second_call(),
            &InstanceRefresh::default(),
            false,
        )
        .await;
        result.unwrap();
        let calls = double.calls();
        let starts = calls.iter().filter(|c| c.starts_with("Start")).count();
        assert_eq!(starts, 2, "one refused, one accepted: {calls:?}");
        assert_eq!(double.starts().len(), 1);
        assert!(
            statuses.iter().any(|s| s.contains("already in progress")),
            "{statuses:?}"
        );
    }

    #[tokio::test]
    async fn no_wait_returns_once_started() {
        let (result, double, statuses) = run(
            RefreshScript::succeed_after(5),
            &InstanceRefresh::default(),
            true,
        )
        .await;
        result.unwrap();
        assert_eq!(double.starts().len(), 1);
        assert_eq!(
            double.calls(),
            ["DescribeInstanceRefreshes g", "StartInstanceRefresh g"]
        );
        assert_eq!(
            statuses,
            ["instance refresh refresh-1 started (not waiting for it)"]
        );
    }
}
