//! A small layered layout (Sugiyama style, top to bottom) for workflow graphs: boxes in rows,
//! edges as polylines, every edge label in a box of its own so that no label sits on a state
//! or another label. Pure geometry: sizes in, positions out; [`crate::svg`] draws it.
//!
//! Why our own rather than a layout crate: `layout-rs` (the pure-Rust Graphviz-like layout)
//! was tried on `workflows/production-deploy.ron` and drew its 17 states on a 2842 × 3663 px
//! canvas with edge labels far from their edges, one line each along the curve; it gives
//! every picture the same element ids (`arrow0`, `endarrow`), which collide when a report
//! inlines many pictures in one page; and it has no way to mark states and edges for the
//! highlighting a run's picture needs. Workflow graphs are small (tens of states), so the
//! classic steps are enough, done simply:
//!
//! 1. edges that close a cycle (found by a depth-first walk from the initial state, in file
//!    order) are turned around, so the graph has no cycle;
//! 2. each state's row is its longest path from a source; a state row `r` is row `2r` of the
//!    layered graph, and every edge gets a label box in the row under its source and a point
//!    in each row it crosses after that;
//! 3. each row is ordered by the mean position of its neighbours, sweeping down and up;
//! 4. each box moves toward the mean x of its neighbours, keeping its row's order and gaps.
//!
//! The result is deterministic: the same graph always gives the same picture.

/// A box to place: a state, with the width and height of its text and padding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    /// Width in px.
    pub w: f64,
    /// Height in px.
    pub h: f64,
}

/// An edge from state `from` to state `to` (indexes into the nodes), with its label's size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdgeSpec {
    /// The source state.
    pub from: usize,
    /// The target state.
    pub to: usize,
    /// The label's size (zero for no label).
    pub label: Size,
}

/// A placed box: its top-left corner and size.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rect {
    /// Left.
    pub x: f64,
    /// Top.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

/// A point.
pub type Point = (f64, f64);

/// A placed edge: the polyline from its source's border to its target's border (the arrow
/// head goes at the last point), and where its label's top-left corner goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The polyline, source to target.
    pub points: Vec<Point>,
    /// The label's top-left corner.
    pub label_at: Point,
}

/// The whole picture's geometry.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// One per state, in the order given.
    pub nodes: Vec<Rect>,
    /// One per edge, in the order given.
    pub edges: Vec<Route>,
    /// The picture's width.
    pub width: f64,
    /// The picture's height.
    pub height: f64,
}

/// Horizontal gap between boxes in a row.
const GAP_X: f64 = 28.0;
/// Vertical gap between rows.
const GAP_Y: f64 = 18.0;
/// The margin around the picture; the top one leaves room for the initial state's marker.
const MARGIN: f64 = 16.0;
/// Room above the first row for the arrow into the initial state.
pub const TOP: f64 = 34.0;
/// How far a self-loop reaches to the right of its state.
const LOOP: f64 = 34.0;
/// Width kept for a point where an edge crosses a row.
const THROUGH: f64 = 10.0;
/// How far a label sits to the right of its edge.
pub const LABEL_OFFSET: f64 = 8.0;

/// One box of the layered graph: a state, an edge's label, or a point an edge passes.
#[derive(Debug, Clone, Copy)]
struct Item {
    row: usize,
    /// Width kept in the row (a state with a self-loop keeps room for the loop and its label).
    w: f64,
    h: f64,
    x: f64,
}

/// Lays out `nodes` (states) and `edges` from state `root` (the initial state).
pub fn layout(nodes: &[Size], edges: &[EdgeSpec], root: usize) -> Layout {
    let n = nodes.len();
    let reversed = back_edges(n, edges, root);
    let rank = ranks(n, edges, &reversed);

    // The layered graph: states first, then each edge's label and pass-through points.
    let mut items: Vec<Item> = nodes
        .iter()
        .enumerate()
        .map(|(i, s)| Item {
            row: 2 * rank[i],
            w: s.w,
            h: s.h,
            x: 0.0,
        })
        .collect();
    // For each edge, its chain of items from the upper end to the lower end.
    let mut chains: Vec<Vec<usize>> = Vec::with_capacity(edges.len());
    for (k, e) in edges.iter().enumerate() {
        if e.from == e.to {
            items[e.from].w = items[e.from]
                .w
                .max(nodes[e.from].w + 2.0 * (LOOP + LABEL_OFFSET + e.label.w));
            chains.push(Vec::new());
            continue;
        }
        let (top, bottom) = if reversed[k] {
            (e.to, e.from)
        } else {
            (e.from, e.to)
        };
        let mut chain = vec![top];
        for row in items[top].row + 1..items[bottom].row {
            let (w, h) = if row == items[top].row + 1 {
                (e.label.w + LABEL_OFFSET + THROUGH, e.label.h)
            } else {
                (THROUGH, 0.0)
            };
            chain.push(items.len());
            items.push(Item { row, w, h, x: 0.0 });
        }
        chain.push(bottom);
        chains.push(chain);
    }

    let rows = order_rows(&items, &chains);
    place_x(&mut items, &rows, &chains);

    // Rows top to bottom.
    let mut row_y = Vec::with_capacity(rows.len());
    let mut y = MARGIN + TOP;
    for row in &rows {
        row_y.push(y);
        let h = row.iter().map(|&i| items[i].h).fold(0.0, f64::max);
        y += h + GAP_Y;
    }
    let height = y - GAP_Y + MARGIN;
    let row_h: Vec<f64> = rows
        .iter()
        .map(|row| row.iter().map(|&i| items[i].h).fold(0.0, f64::max))
        .collect();

    let left = items
        .iter()
        .map(|it| it.x - it.w / 2.0)
        .fold(f64::INFINITY, f64::min);
    let shift = MARGIN - if left.is_finite() { left } else { 0.0 };
    let width = items
        .iter()
        .map(|it| it.x + it.w / 2.0 + shift)
        .fold(0.0, f64::max)
        + MARGIN;

    let rect_of = |i: usize| {
        let it = &items[i];
        let w = if i < n { nodes[i].w } else { it.w };
        // A state's box is centred in its row; a label's box starts at its edge.
        Rect {
            x: it.x + shift - w / 2.0,
            y: row_y[it.row] + (row_h[it.row] - it.h) / 2.0,
            w,
            h: it.h,
        }
    };
    let node_rects: Vec<Rect> = (0..n).map(rect_of).collect();

    let routes = edges
        .iter()
        .enumerate()
        .map(|(k, e)| {
            if e.from == e.to {
                return self_loop(&node_rects[e.from]);
            }
            let chain = &chains[k];
            let mut points = Vec::with_capacity(chain.len() * 2);
            let top = node_rects[chain[0]];
            points.push((top.x + top.w / 2.0, top.y + top.h));
            let mut label_at = (0.0, 0.0);
            for (j, &i) in chain[1..chain.len() - 1].iter().enumerate() {
                let r = rect_of(i);
                let line_x = r.x + THROUGH / 2.0;
                if j == 0 {
                    label_at = (line_x + LABEL_OFFSET, r.y);
                }
                let band = row_y[items[i].row];
                points.push((line_x, band));
                points.push((line_x, band + row_h[items[i].row]));
            }
            let bottom = node_rects[chain[chain.len() - 1]];
            points.push((bottom.x + bottom.w / 2.0, bottom.y));
            if reversed[k] {
                points.reverse();
            }
            Route { points, label_at }
        })
        .collect();

    Layout {
        nodes: node_rects,
        edges: routes,
        width,
        height,
    }
}

/// A loop out of a state's right side and back, its label to the right of it.
fn self_loop(r: &Rect) -> Route {
    let x = r.x + r.w;
    Route {
        points: vec![
            (x, r.y + r.h * 0.3),
            (x + LOOP, r.y + r.h * 0.3),
            (x + LOOP, r.y + r.h * 0.7),
            (x, r.y + r.h * 0.7),
        ],
        label_at: (x + LOOP + LABEL_OFFSET, r.y),
    }
}

/// Which edges close a cycle: a depth-first walk from `root`, then from every state not
/// reached, in order; an edge to a state still on the walk's path is turned around.
fn back_edges(n: usize, edges: &[EdgeSpec], root: usize) -> Vec<bool> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, e) in edges.iter().enumerate() {
        out[e.from].push(k);
    }
    let mut mark = vec![Mark::New; n];
    let mut reversed = vec![false; edges.len()];
    let starts = std::iter::once(root).chain(0..n);
    for start in starts {
        if start >= n || mark[start] != Mark::New {
            continue;
        }
        // An explicit stack of (state, next outgoing edge to look at): no recursion depth
        // limit on a long chain of states.
        let mut stack = vec![(start, 0usize)];
        mark[start] = Mark::OnPath;
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            if let Some(&k) = out[v].get(*next) {
                *next += 1;
                let to = edges[k].to;
                match mark[to] {
                    Mark::New => {
                        mark[to] = Mark::OnPath;
                        stack.push((to, 0));
                    }
                    Mark::OnPath if to != v => reversed[k] = true,
                    _ => {}
                }
            } else {
                mark[v] = Mark::Done;
                stack.pop();
            }
        }
    }
    reversed
}

/// Each state's rank: the longest path to it from a state with no incoming edge, edges taken
/// as turned around where `reversed` says.
fn ranks(n: usize, edges: &[EdgeSpec], reversed: &[bool]) -> Vec<usize> {
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indegree = vec![0usize; n];
    for (k, e) in edges.iter().enumerate() {
        if e.from == e.to {
            continue;
        }
        let (a, b) = if reversed[k] {
            (e.to, e.from)
        } else {
            (e.from, e.to)
        };
        succ[a].push(b);
        indegree[b] += 1;
    }
    let mut rank = vec![0usize; n];
    let mut ready: Vec<usize> = (0..n).filter(|&v| indegree[v] == 0).rev().collect();
    while let Some(v) = ready.pop() {
        for &w in &succ[v] {
            rank[w] = rank[w].max(rank[v] + 1);
            indegree[w] -= 1;
            if indegree[w] == 0 {
                ready.push(w);
            }
        }
    }
    rank
}

/// The items of each row, ordered to cross few edges: first in the order they were made, then
/// by the mean position of their neighbours in the row above (sweeping down) and below
/// (sweeping up), a few times.
fn order_rows(items: &[Item], chains: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let rows = items.iter().map(|it| it.row + 1).max().unwrap_or(0);
    let mut order: Vec<Vec<usize>> = vec![Vec::new(); rows];
    for (i, it) in items.iter().enumerate() {
        order[it.row].push(i);
    }
    let (up, down) = neighbours(items.len(), chains);
    let mut pos = vec![0.0f64; items.len()];
    for row in &order {
        for (p, &i) in row.iter().enumerate() {
            pos[i] = p as f64;
        }
    }
    for sweep in 0..8 {
        let downward = sweep % 2 == 0;
        let row_ids: Vec<usize> = if downward {
            (1..rows).collect()
        } else {
            (0..rows.saturating_sub(1)).rev().collect()
        };
        for r in row_ids {
            let adjacent = if downward { &up } else { &down };
            let mut keyed: Vec<(f64, usize)> = order[r]
                .iter()
                .map(|&i| {
                    let ns = &adjacent[i];
                    let key = if ns.is_empty() {
                        pos[i]
                    } else {
                        ns.iter().map(|&j| pos[j]).sum::<f64>() / ns.len() as f64
                    };
                    (key, i)
                })
                .collect();
            // Stable: ties keep their current order.
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            order[r] = keyed.into_iter().map(|(_, i)| i).collect();
            for (p, &i) in order[r].iter().enumerate() {
                pos[i] = p as f64;
            }
        }
    }
    order
}

/// For each item, its neighbours in the row above and in the row below.
fn neighbours(len: usize, chains: &[Vec<usize>]) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let mut up = vec![Vec::new(); len];
    let mut down = vec![Vec::new(); len];
    for chain in chains {
        for pair in chain.windows(2) {
            down[pair[0]].push(pair[1]);
            up[pair[1]].push(pair[0]);
        }
    }
    (up, down)
}

/// Centre x of every item: rows packed left to right, then each box pulled toward the mean x
/// of its neighbours, keeping the row's order and gaps.
fn place_x(items: &mut [Item], rows: &[Vec<usize>], chains: &[Vec<usize>]) {
    let (up, down) = neighbours(items.len(), chains);
    for row in rows {
        pack(items, row, &vec![None; row.len()]);
    }
    for sweep in 0..8 {
        let downward = sweep % 2 == 0;
        let row_ids: Vec<usize> = if downward {
            (0..rows.len()).collect()
        } else {
            (0..rows.len()).rev().collect()
        };
        for r in row_ids {
            let wanted: Vec<Option<f64>> = rows[r]
                .iter()
                .map(|&i| {
                    let ns: Vec<usize> = if downward { &up[i] } else { &down[i] }
                        .iter()
                        .chain(if downward { &down[i] } else { &up[i] })
                        .copied()
                        .collect();
                    (!ns.is_empty())
                        .then(|| ns.iter().map(|&j| items[j].x).sum::<f64>() / ns.len() as f64)
                })
                .collect();
            pack(items, &rows[r], &wanted);
        }
    }
}

/// Places the items of one row at the x each wants (its current x when `None`), left to right,
/// each at least a gap right of the one before; then moves the row as a whole so that on
/// average the boxes sit where they want.
fn pack(items: &mut [Item], row: &[usize], wanted: &[Option<f64>]) {
    let mut prev: Option<(f64, f64)> = None;
    let mut drift = 0.0;
    for (&i, want) in row.iter().zip(wanted) {
        let want = want.unwrap_or(items[i].x);
        let min = prev.map_or(f64::NEG_INFINITY, |(x, w)| {
            x + w / 2.0 + GAP_X + items[i].w / 2.0
        });
        let x = want.max(min);
        drift += x - want;
        items[i].x = x;
        prev = Some((x, items[i].w));
    }
    if !row.is_empty() {
        let back = drift / row.len() as f64;
        for &i in row {
            items[i].x -= back;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(w: f64, h: f64) -> Size {
        Size { w, h }
    }

    fn edge(from: usize, to: usize) -> EdgeSpec {
        EdgeSpec {
            from,
            to,
            label: size(40.0, 14.0),
        }
    }

    fn overlaps(a: &Rect, b: &Rect) -> bool {
        a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
    }

    #[test]
    fn a_chain_goes_down_row_by_row() {
        let nodes = [size(80.0, 30.0); 3];
        let l = layout(&nodes, &[edge(0, 1), edge(1, 2)], 0);
        assert!(l.nodes[0].y < l.nodes[1].y && l.nodes[1].y < l.nodes[2].y);
        for r in &l.edges {
            assert!(r.points.first().expect("start").1 < r.points.last().expect("end").1);
        }
    }

    #[test]
    fn a_cycle_is_drawn_with_its_back_edge_pointing_up() {
        // a -> b -> c -> a, and c -> done.
        let nodes = [size(60.0, 30.0); 4];
        let edges = [edge(0, 1), edge(1, 2), edge(2, 0), edge(2, 3)];
        let l = layout(&nodes, &edges, 0);
        let back = &l.edges[2];
        let (start, end) = (back.points[0], back.points[back.points.len() - 1]);
        assert!(end.1 < start.1, "{back:?}");
        // It leaves c's top and reaches a's bottom.
        assert_eq!(start.1, l.nodes[2].y);
        assert_eq!(end.1, l.nodes[0].y + l.nodes[0].h);
    }

    #[test]
    fn no_two_boxes_overlap_and_everything_is_inside_the_picture() {
        // A diamond with a failure branch, a long edge and a self-loop.
        let nodes = [
            size(90.0, 30.0),
            size(120.0, 44.0),
            size(70.0, 30.0),
            size(100.0, 30.0),
            size(80.0, 30.0),
        ];
        let edges = [
            edge(0, 1),
            edge(0, 2),
            edge(1, 3),
            edge(2, 3),
            edge(0, 4),
            edge(3, 4),
            edge(1, 1),
        ];
        let l = layout(&nodes, &edges, 0);
        let mut boxes: Vec<Rect> = l.nodes.clone();
        for (r, e) in l.edges.iter().zip(&edges) {
            boxes.push(Rect {
                x: r.label_at.0,
                y: r.label_at.1,
                w: e.label.w,
                h: e.label.h,
            });
        }
        for (i, a) in boxes.iter().enumerate() {
            assert!(a.x >= 0.0 && a.y >= 0.0, "{a:?}");
            assert!(
                a.x + a.w <= l.width && a.y + a.h <= l.height,
                "{a:?} in {l:?}"
            );
            for b in &boxes[i + 1..] {
                assert!(!overlaps(a, b), "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn the_same_graph_gives_the_same_picture() {
        let nodes = [size(80.0, 30.0); 4];
        let edges = [edge(0, 1), edge(0, 2), edge(1, 3), edge(2, 3), edge(3, 0)];
        assert_eq!(layout(&nodes, &edges, 0), layout(&nodes, &edges, 0));
    }

    #[test]
    fn a_state_no_edge_reaches_is_still_placed() {
        let nodes = [size(80.0, 30.0); 3];
        let l = layout(&nodes, &[edge(0, 1)], 0);
        assert_eq!(l.nodes.len(), 3);
        assert!(!overlaps(&l.nodes[0], &l.nodes[2]));
    }
}
