//! The exactly-once check on hand-made histories and final states: each
//! acknowledged append present once passes; lost, doubled and phantom
//! values, a counter outside its bounds, a register holding a value
//! nobody wrote are each named.

use super::acknowledged::{check, Finals};
use super::counter::{CounterIn, CounterOut};
use super::history::Op;
use super::list_append::{ListIn, ListOut};
use super::register::{RegisterIn, RegisterOut};
use super::workload::Histories;

fn history() -> Histories {
    let mut h = Histories::default();
    h.lists.insert(
        "list:0".into(),
        vec![
            Op::ok(0, ListIn::Push(1), 0, 1, ListOut::Pushed(1)),
            Op::ok(1, ListIn::Push(2), 0, 2, ListOut::Pushed(2)),
            Op::unknown(2, ListIn::Push(3), 3),
        ],
    );
    h.counters.insert(
        "counter:0".into(),
        vec![
            Op::ok(0, CounterIn::Incr, 0, 1, CounterOut::Incremented(1)),
            Op::unknown(1, CounterIn::Incr, 2),
        ],
    );
    h.registers.insert("register:0".into(), vec![Op::ok(0, RegisterIn::Set(7), 0, 1, RegisterOut::Done)]);
    h
}

fn finals(list: Vec<u64>, counter: i64, register: Option<u64>) -> Finals {
    let mut f = Finals::default();
    f.lists.insert("list:0".into(), list);
    f.counters.insert("counter:0".into(), counter);
    f.registers.insert("register:0".into(), register);
    f
}

#[test]
fn every_acknowledged_write_present_once_passes_and_is_counted() {
    for (list, counter) in [(vec![1, 2], 1), (vec![2, 1, 3], 2)] {
        let t = check(&history(), &finals(list.clone(), counter, Some(7)));
        assert!(
            t.problems.is_empty() && t.lost.is_empty(),
            "{list:?} {counter}: {:?} {:?}",
            t.problems,
            t.lost
        );
        assert_eq!((t.acknowledged, t.unknown), (4, 2));
    }
}

#[test]
fn lost_doubled_phantom_and_out_of_bounds_writes_are_named() {
    let cases = [
        (finals(vec![2], 1, Some(7)), "list:0: acknowledged RPUSH 1 lost"),
        (finals(vec![1, 2, 2], 1, Some(7)), "list:0: RPUSH 2 present 2 times"),
        (finals(vec![1, 3, 3, 2], 1, Some(7)), "list:0: RPUSH 3 present 2 times"),
        (finals(vec![1, 2, 9], 1, Some(7)), "list:0: 9 present but never appended"),
        (finals(vec![1, 2], 0, Some(7)), "counter:0: final value 0"),
        (finals(vec![1, 2], 3, Some(7)), "counter:0: final value 3"),
        (finals(vec![1, 2], 1, None), "register:0: missing at the end"),
        (finals(vec![1, 2], 1, Some(8)), "register:0: final value 8 was never written"),
    ];
    // Losses apart from the rest: an async failover may lose writes.
    let lost = [0, 4, 6];
    for (i, (f, want)) in cases.into_iter().enumerate() {
        let t = check(&history(), &f);
        let (named, other) = if lost.contains(&i) { (&t.lost, &t.problems) } else { (&t.problems, &t.lost) };
        assert!(
            named.len() == 1 && named[0].starts_with(want) && other.is_empty(),
            "#{i}: {want:?} in {named:?} (and {other:?})"
        );
    }
}
