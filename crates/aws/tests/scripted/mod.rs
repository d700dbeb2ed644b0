//! A scripted [`CloudFormationApi`]: answers each call from a queue and records every call,
//! so the driver's paths no emulator produces (rollbacks, in-progress states, failure events)
//! are tested without AWS.

use std::collections::VecDeque;
use std::sync::Mutex;

use berth_aws::api::{
    ChangeSetRequest, ChangeSetSnapshot, ChangeSetSummary, CloudFormationApi, StackEvent,
    StackResource, StackSnapshot,
};
use berth_aws::error::ApiError;

/// Answers each call from a script and records every call.
#[derive(Default)]
pub struct Scripted {
    describe: Mutex<VecDeque<Result<Option<StackSnapshot>, ApiError>>>,
    /// Pages of `DescribeStacks` over all stacks, with their next tokens.
    pub pages: Mutex<VecDeque<(Vec<StackSnapshot>, Option<String>)>>,
    events: Mutex<Vec<StackEvent>>,
    create: Mutex<VecDeque<Result<(String, String), ApiError>>>,
    change_sets: Mutex<VecDeque<Result<ChangeSetSnapshot, ApiError>>>,
    /// `ListChangeSets` answers; an empty list once the script runs out.
    listed: Mutex<VecDeque<Vec<ChangeSetSummary>>>,
    /// `DeleteChangeSet` answers; success once the script runs out.
    deleted: Mutex<VecDeque<Result<(), ApiError>>>,
    calls: Mutex<Vec<String>>,
    /// The stack name of every `CreateChangeSet`.
    changed: Mutex<Vec<String>>,
}

impl Scripted {
    pub fn describes(self, items: Vec<Option<StackSnapshot>>) -> Self {
        self.describe
            .lock()
            .unwrap()
            .extend(items.into_iter().map(Ok));
        self
    }
    pub fn creates(self, item: Result<(String, String), ApiError>) -> Self {
        self.create.lock().unwrap().push_back(item);
        self
    }
    pub fn change_set(self, item: ChangeSetSnapshot) -> Self {
        self.change_sets.lock().unwrap().push_back(Ok(item));
        self
    }
    pub fn change_set_error(self, err: ApiError) -> Self {
        self.change_sets.lock().unwrap().push_back(Err(err));
        self
    }
    pub fn lists_change_sets(self, items: Vec<ChangeSetSummary>) -> Self {
        self.listed.lock().unwrap().push_back(items);
        self
    }
    pub fn deletes_change_set(self, item: Result<(), ApiError>) -> Self {
        self.deleted.lock().unwrap().push_back(item);
        self
    }
    pub fn with_events(self, events: Vec<StackEvent>) -> Self {
        *self.events.lock().unwrap() = events;
        self
    }
    fn log(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    /// The stacks change sets were asked for, by the name sent.
    pub fn changed_stacks(&self) -> Vec<String> {
        self.changed.lock().unwrap().clone()
    }
}

impl CloudFormationApi for Scripted {
    async fn describe_stack(&self, name_or_id: &str) -> Result<Option<StackSnapshot>, ApiError> {
        self.log(format!("describe {name_or_id}"));
        self.describe
            .lock()
            .unwrap()
            .pop_front()
            .expect("script has no more DescribeStacks answers")
    }
    async fn list_stacks_page(
        &self,
        next_token: Option<String>,
    ) -> Result<(Vec<StackSnapshot>, Option<String>), ApiError> {
        self.log(format!("list {next_token:?}"));
        Ok(self.pages.lock().unwrap().pop_front().expect("no page"))
    }
    async fn recent_events(&self, stack_id: &str) -> Result<Vec<StackEvent>, ApiError> {
        self.log(format!("events {stack_id}"));
        Ok(self.events.lock().unwrap().clone())
    }
    async fn list_resources(&self, _stack_id: &str) -> Result<Vec<StackResource>, ApiError> {
        Ok(Vec::new())
    }
    async fn create_change_set(
        &self,
        request: &ChangeSetRequest,
    ) -> Result<(String, String), ApiError> {
        self.log(format!("create_change_set {:?}", request.kind));
        self.changed
            .lock()
            .unwrap()
            .push(request.stack_name.clone());
        self.create
            .lock()
            .unwrap()
            .pop_front()
            .expect("no create answer")
    }
    async fn describe_change_set(
        &self,
        change_set_id: &str,
    ) -> Result<ChangeSetSnapshot, ApiError> {
        self.log(format!("describe_change_set {change_set_id}"));
        self.change_sets
            .lock()
            .unwrap()
            .pop_front()
            .expect("no change set answer")
    }
    async fn execute_change_set(&self, change_set_id: &str, _token: &str) -> Result<(), ApiError> {
        self.log(format!("execute {change_set_id}"));
        Ok(())
    }
    async fn delete_change_set(&self, change_set_id: &str) -> Result<(), ApiError> {
        self.log(format!("delete_change_set {change_set_id}"));
        self.deleted.lock().unwrap().pop_front().unwrap_or(Ok(()))
    }
    async fn list_change_sets(
        &self,
        stack_name_or_id: &str,
    ) -> Result<Vec<ChangeSetSummary>, ApiError> {
        self.log(format!("list_change_sets {stack_name_or_id}"));
        Ok(self.listed.lock().unwrap().pop_front().unwrap_or_default())
    }
    async fn delete_stack(&self, stack_id: &str, _token: &str) -> Result<(), ApiError> {
        self.log(format!("delete_stack {stack_id}"));
        Ok(())
    }
}
