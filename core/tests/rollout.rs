//! Rollouts: a launch-template change becomes an update of every Auto Scaling Group using the
//! template, after the template's own update, and a group left on an old version (an apply that
//! stopped between the two) is brought onto the current one by the next run.

#[path = "../../stacks/closet.rs"]
mod closet;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;

use infra_core::engine::{self, Action, ApplyOptions, ApplyResult, NoHook, Plan, PlanOptions};
use infra_core::model::{Declared, Resource};
use infra_core::provider::{Context, DeleteOptions, ProviderError};
use infra_core::stack::attributes;
use infra_core::testing::{Call, FakeProvider, Op};
use infra_core::{Address, Kind, Observed, Provider, Stack};

fn addr(s: &str) -> Address {
    Address::from_str(s).unwrap()
}

/// The fake cloud plus launch-template versions, as the AWS provider reports them: a template's
/// update makes a new version (`latest_version`), and a group's update of `launch_template`
/// pins it to the template's version at that time (`launch_template_version`).
#[derive(Default)]
struct Versioned {
    fake: FakeProvider,
    /// Launch template address -> latest version; group address -> pinned version. A resource
    /// not in the map is at version 1.
    versions: Mutex<HashMap<Address, u32>>,
}

impl Versioned {
    fn applied(stack: &Stack) -> Self {
        Versioned {
            fake: FakeProvider::applied(stack),
            versions: Mutex::default(),
        }
    }

    fn version(&self, address: &Address) -> u32 {
        *self.versions.lock().unwrap().get(address).unwrap_or(&1)
    }

    fn set_version(&self, address: &Address, version: u32) {
        self.versions
            .lock()
            .unwrap()
            .insert(address.clone(), version);
    }

    fn decorate(&self, observed: Observed) -> Observed {
        let version = self.version(&observed.address).to_string();
        match observed.address.kind {
            Kind::LaunchTemplate => observed.with_attribute(attributes::LATEST_VERSION, version),
            Kind::AutoScalingGroup => {
                observed.with_attribute(attributes::LAUNCH_TEMPLATE_VERSION, version)
            }
            _ => observed,
        }
    }

    /// Pin a group to the version its template resolves to in this apply.
    fn pin(&self, ctx: &Context<'_>, desired: &Declared) -> Result<(), ProviderError> {
        if let Resource::AutoScalingGroup(group) = &desired.resource {
            let template = group.launch_template.address();
            let version = ctx
                .resolved
                .attribute(&template, attributes::LATEST_VERSION)?
                .parse()
                .expect("a version number");
            self.set_version(&desired.address(), version);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Provider for Versioned {
    async fn discover(&self, stack: &Stack) -> Result<Vec<Observed>, ProviderError> {
        let found = self.fake.discover(stack).await?;
        Ok(found.into_iter().map(|o| self.decorate(o)).collect())
    }

    async fn create(
        &self,
        ctx: &Context<'_>,
        desired: &Declared,
    ) -> Result<Observed, ProviderError> {
        let created = self.fake.create(ctx, desired).await?;
        self.pin(ctx, desired)?;
        Ok(self.decorate(created))
    }

    async fn update(
        &self,
        ctx: &Context<'_>,
        desired: &Declared,
        prior: &Observed,
        changed: &[String],
    ) -> Result<Observed, ProviderError> {
        let updated = self.fake.update(ctx, desired, prior, changed).await?;
        let address = desired.address();
        if address.kind == Kind::LaunchTemplate {
            self.set_version(&address, self.version(&address) + 1);
        }
        if changed.iter().any(|f| f == "launch_template") {
            self.pin(ctx, desired)?;
        }
        Ok(self.decorate(updated))
    }

    async fn delete(
        &self,
        ctx: &Context<'_>,
        prior: &Observed,
        options: DeleteOptions,
    ) -> Result<(), ProviderError> {
        self.fake.delete(ctx, prior, options).await
    }

    async fn wait_ready(
        &self,
        ctx: &Context<'_>,
        observed: &Observed,
    ) -> Result<Observed, ProviderError> {
        let ready = self.fake.wait_ready(ctx, observed).await?;
        Ok(self.decorate(ready))
    }

    async fn read(
        &self,
        stack: &Stack,
        address: &Address,
        physical_id: &str,
    ) -> Result<Option<Observed>, ProviderError> {
        let found = self.fake.read(stack, address, physical_id).await?;
        Ok(found.map(|o| self.decorate(o)))
    }

    async fn adopt(&self, ctx: &Context<'_>, observed: &Observed) -> Result<(), ProviderError> {
        self.fake.adopt(ctx, observed).await
    }
}

async fn plan(stack: &Stack, provider: &dyn Provider) -> Plan {
    engine::plan(stack, provider, &PlanOptions::default())
        .await
        .unwrap()
}

async fn apply(plan: &Plan, stack: &Stack, provider: &dyn Provider) -> ApplyResult {
    engine::apply(plan, stack, provider, &ApplyOptions::default(), &NoHook)
        .await
        .unwrap()
}

/// `(action, address, changed fields, reason)` of every change that does something.
fn actions(plan: &Plan) -> Vec<(Action, String, Vec<String>, Option<String>)> {
    plan.changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| {
            (
                c.action,
                c.address.to_string(),
                c.fields.iter().map(|f| f.field.clone()).collect(),
                c.reason.clone(),
            )
        })
        .collect()
}

fn update_call<'a>(calls: &'a [Call], address: &str) -> &'a Call {
    let address = addr(address);
    calls
        .iter()
        .find(|c| c.op == Op::Update && c.address.as_ref() == Some(&address))
        .unwrap_or_else(|| panic!("no update of {address} in {calls:?}"))
}

/// The closet stack with the API's user data pointing at another image tag.
fn closet_with_new_api_image() -> Stack {
    let mut stack = closet::stack();
    let template = stack
        .resources
        .iter_mut()
        .find(|d| d.address() == addr("ec2_launch_template.api"))
        .expect("closet declares ec2_launch_template.api");
    let Resource::LaunchTemplate(t) = &mut template.resource else {
        panic!("ec2_launch_template.api is a launch template");
    };
    let script = t.user_data.take().expect("the api template has user data");
    t.user_data = Some(script.replace("closet/api:latest", "closet/api:v2"));
    assert_ne!(t.user_data.as_deref(), Some(script.as_str()));
    stack
}

#[tokio::test]
async fn a_template_change_rolls_out_through_its_groups_only() {
    let before = closet::stack();
    let provider = Versioned::applied(&before);
    let stack = closet_with_new_api_image();

    let p = plan(&stack, &provider).await;
    assert_eq!(
        actions(&p),
        [
            (
                Action::Update,
                "ec2_launch_template.api".to_string(),
                vec!["user_data".to_string()],
                None,
            ),
            (
                Action::Update,
                "autoscaling_group.api".to_string(),
                vec!["launch_template".to_string()],
                Some("ec2_launch_template.api gets a new version: instance refresh".to_string()),
            ),
        ]
    );
    let template = p
        .changes
        .iter()
        .position(|c| c.address == addr("ec2_launch_template.api"))
        .unwrap();
    let group = p
        .changes
        .iter()
        .position(|c| c.address == addr("autoscaling_group.api"))
        .unwrap();
    assert!(p.edges.contains(&(template, group)), "{:?}", p.edges);

    let result = apply(&p, &stack, &provider).await;
    assert!(result.is_success(), "{result:?}");
    let calls = provider.fake.calls();
    let template_update = update_call(&calls, "ec2_launch_template.api");
    let group_update = update_call(&calls, "autoscaling_group.api");
    assert!(template_update.finished < group_update.started);
    assert_eq!(group_update.changed, ["launch_template"]);
    assert_eq!(provider.version(&addr("autoscaling_group.api")), 2);
    assert_eq!(provider.version(&addr("autoscaling_group.web")), 1);

    assert!(actions(&plan(&stack, &provider).await).is_empty());
}

#[tokio::test]
async fn a_group_with_its_own_changes_also_rolls_out() {
    let provider = Versioned::applied(&closet::stack());
    let mut stack = closet_with_new_api_image();
    let group = stack
        .resources
        .iter_mut()
        .find(|d| d.address() == addr("autoscaling_group.api"))
        .unwrap();
    let Resource::AutoScalingGroup(g) = &mut group.resource else {
        panic!("autoscaling_group.api is a group");
    };
    g.max_size = 4;

    let p = plan(&stack, &provider).await;
    let change = p
        .changes
        .iter()
        .find(|c| c.address == addr("autoscaling_group.api"))
        .unwrap();
    assert_eq!(change.action, Action::Update);
    let fields: Vec<&str> = change.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["launch_template", "max_size"]);
    assert_eq!(
        change.reason.as_deref(),
        Some("ec2_launch_template.api gets a new version: instance refresh")
    );
}

#[tokio::test]
async fn nothing_changed_means_no_rollout() {
    let stack = closet::stack();
    let provider = Versioned::applied(&stack);
    let p = plan(&stack, &provider).await;
    assert!(actions(&p).is_empty());
    assert!(apply(&p, &stack, &provider).await.is_success());
    assert!(provider.fake.changes().is_empty());
}

#[tokio::test]
async fn a_group_left_on_an_old_version_is_rolled_out_by_the_next_run() {
    let before = closet::stack();
    let provider = Versioned::applied(&before);
    let stack = closet_with_new_api_image();

    // The template gets its new version, then the group's update fails.
    provider.fake.fail_on(
        Op::Update,
        &addr("autoscaling_group.api"),
        ProviderError::Other("connection reset".into()),
    );
    let result = apply(&plan(&stack, &provider).await, &stack, &provider).await;
    assert_eq!(result.completed, [addr("ec2_launch_template.api")]);
    assert_eq!(result.failed.len(), 1);
    assert_eq!(provider.version(&addr("ec2_launch_template.api")), 2);
    assert_eq!(provider.version(&addr("autoscaling_group.api")), 1);

    // The template's data is in place, so only the group is left to do.
    let p = plan(&stack, &provider).await;
    assert_eq!(
        actions(&p),
        [(
            Action::Update,
            "autoscaling_group.api".to_string(),
            vec!["launch_template".to_string()],
            Some(
                "runs version 1 of ec2_launch_template.api, whose current version is 2: \
                 instance refresh"
                    .to_string()
            ),
        )]
    );
    let field = &p
        .changes
        .iter()
        .find(|c| c.action == Action::Update)
        .unwrap()
        .fields[0];
    assert_eq!(field.before, "api version 1");
    assert_eq!(field.after, "api version 2");
    provider.fake.clear_calls();
    assert!(apply(&p, &stack, &provider).await.is_success());
    assert_eq!(provider.fake.changes(), ["update autoscaling_group.api"]);
    assert_eq!(provider.version(&addr("autoscaling_group.api")), 2);
    assert!(actions(&plan(&stack, &provider).await).is_empty());
}

#[tokio::test]
async fn a_group_pinned_elsewhere_out_of_band_is_brought_back() {
    let stack = closet::stack();
    let provider = Versioned::applied(&stack);
    provider.set_version(&addr("ec2_launch_template.web"), 3);
    let p = plan(&stack, &provider).await;
    let rollouts: Vec<String> = actions(&p).into_iter().map(|a| a.1).collect();
    assert_eq!(rollouts, ["autoscaling_group.web"]);
}

#[tokio::test]
async fn the_plan_shows_the_template_update_and_the_rollout() {
    let provider = Versioned::applied(&closet::stack());
    let p = plan(&closet_with_new_api_image(), &provider).await;
    let rendered = engine::render_plan(&p, false);
    let group = rendered
        .split_once("    ~ autoscaling_group.api\n")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no group update in\n{rendered}"));
    assert!(
        group.starts_with(
            "        # ec2_launch_template.api gets a new version: instance refresh\n\
             \x20       ~ launch_template: \"api version 1\" -> \"api new version\"\n\n\
             Plan: 0 to add, 2 to change, 0 to destroy.\n"
        ),
        "{rendered}"
    );
}
