//! One auction: who wins and what the winner pays.

use super::*;

/// The result of one auction for a bidder bidding `bid` against a highest
/// competing bid `competing` and a reserve: the payment if it wins.
///
/// The bidder wins when its bid is at least both the competing bid and the
/// reserve; it then pays its bid (first price) or the larger of the competing
/// bid and the reserve (second price).
pub fn auction_outcome(kind: AuctionKind, bid: f64, competing: f64, reserve: f64) -> Option<f64> {
    let clearing = competing.max(reserve);
    (bid >= clearing).then_some(match kind {
        AuctionKind::FirstPrice => bid,
        AuctionKind::SecondPrice => clearing,
    })
}
