//! Reading every episode, for `tarem status` and `tarem accounts`.

use tarem_shared::aws::dynamodb::DynamoExecutions;
use tarem_shared::ports::ExecutionStore;

/// Every episode the execution table keeps, page by page.
pub(super) async fn read_episodes(
    executions: &DynamoExecutions,
) -> Result<Vec<tarem_shared::episode::Episode>, tarem_shared::error::PortError> {
    let mut episodes = vec![];
    let mut after = None;
    loop {
        let page = executions.episodes(after.as_deref(), 500).await?;
        episodes.extend(page.episodes);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(episodes),
        }
    }
}
