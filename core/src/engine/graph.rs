//! The dependency graph of a stack: a resource depends on everything it refers to.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::fmt::Write as _;

use crate::refs::Address;
use crate::stack::Stack;

/// Resources of a stack and their references. Edges go from a dependency to its dependent.
#[derive(Clone, Debug)]
pub struct Graph {
    nodes: Vec<Address>,
    /// `(dependency, dependent)` as node indices, sorted.
    edges: Vec<(usize, usize)>,
}

/// A dependency cycle: the addresses on it, starting with the smallest, in the order of the
/// references (each refers to the next... and the last to the first).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle: {}", display_cycle(.cycle))]
pub struct CycleError {
    pub cycle: Vec<Address>,
}

fn display_cycle(cycle: &[Address]) -> String {
    let mut parts: Vec<String> = cycle.iter().map(Address::to_string).collect();
    if let Some(first) = cycle.first() {
        parts.push(first.to_string());
    }
    parts.join(" -> ")
}

impl Graph {
    /// Nodes in declaration order; references to undeclared addresses are left out (validation
    /// reports them).
    pub fn from_stack(stack: &Stack) -> Graph {
        let nodes: Vec<Address> = stack.resources.iter().map(|d| d.address()).collect();
        let index: HashMap<&Address, usize> =
            nodes.iter().enumerate().map(|(i, a)| (a, i)).collect();
        let mut edges = BTreeSet::new();
        for (to, declared) in stack.resources.iter().enumerate() {
            for dep in declared.resource.references() {
                // A security group admitting its own members refers to itself: not a dependency.
                if let Some(&from) = index.get(&dep).filter(|&&from| from != to) {
                    edges.insert((from, to));
                }
            }
        }
        Graph {
            nodes,
            edges: edges.into_iter().collect(),
        }
    }

    /// A graph from explicit nodes and `(dependency, dependent)` edges.
    pub fn from_parts(nodes: Vec<Address>, edges: Vec<(usize, usize)>) -> Graph {
        let mut edges = edges;
        edges.sort();
        edges.dedup();
        Graph { nodes, edges }
    }

    pub fn nodes(&self) -> &[Address] {
        &self.nodes
    }

    /// `(dependency, dependent)` pairs of node indices.
    pub fn edges(&self) -> &[(usize, usize)] {
        &self.edges
    }

    /// Dependencies before dependents; among resources ready at the same time, the smallest
    /// address first.
    pub fn topo_order(&self) -> Result<Vec<Address>, CycleError> {
        let order = topo_indices(self.nodes.len(), &self.edges, |a, b| {
            self.nodes[a].cmp(&self.nodes[b])
        });
        match order {
            Ok(order) => Ok(order.into_iter().map(|i| self.nodes[i].clone()).collect()),
            Err(remaining) => Err(CycleError {
                cycle: find_cycle(&self.nodes, &self.edges, &remaining),
            }),
        }
    }

    /// Graphviz DOT, edges pointing from a resource to what it depends on.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph stack {\n  rankdir = \"RL\";\n");
        for n in &self.nodes {
            let _ = writeln!(out, "  \"{n}\";");
        }
        for &(from, to) in &self.edges {
            let _ = writeln!(out, "  \"{}\" -> \"{}\";", self.nodes[to], self.nodes[from]);
        }
        out.push_str("}\n");
        out
    }

    /// A Mermaid flowchart, edges pointing from a resource to what it depends on.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart RL\n");
        for (i, n) in self.nodes.iter().enumerate() {
            let _ = writeln!(out, "  n{i}[\"{n}\"]");
        }
        for &(from, to) in &self.edges {
            let _ = writeln!(out, "  n{to} --> n{from}");
        }
        out
    }
}

/// Kahn's algorithm over `n` nodes; ties broken by `cmp`. `Err` holds the nodes left on or
/// behind a cycle.
pub(crate) fn topo_indices(
    n: usize,
    edges: &[(usize, usize)],
    cmp: impl Fn(usize, usize) -> std::cmp::Ordering,
) -> Result<Vec<usize>, Vec<usize>> {
    let mut indegree = vec![0usize; n];
    let mut out_edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(from, to) in edges {
        indegree[to] += 1;
        out_edges[from].push(to);
    }
    // A sorted ready list; nodes are few enough per step that a binary insert is cheap.
    let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    ready.sort_by(|&a, &b| cmp(b, a));
    let mut order = Vec::with_capacity(n);
    while let Some(next) = ready.pop() {
        order.push(next);
        for &to in &out_edges[next] {
            indegree[to] -= 1;
            if indegree[to] == 0 {
                let pos = ready.partition_point(|&r| cmp(r, to) == std::cmp::Ordering::Greater);
                ready.insert(pos, to);
            }
        }
    }
    if order.len() == n {
        Ok(order)
    } else {
        Err((0..n).filter(|&i| indegree[i] > 0).collect())
    }
}

/// One cycle among `remaining` (nodes Kahn's algorithm could not order), rotated to start at its
/// smallest address, following references (dependent -> dependency).
fn find_cycle(nodes: &[Address], edges: &[(usize, usize)], remaining: &[usize]) -> Vec<Address> {
    let left: BTreeSet<usize> = remaining.iter().copied().collect();
    let mut deps: HashMap<usize, Vec<usize>> = HashMap::new();
    for &(from, to) in edges {
        if left.contains(&from) && left.contains(&to) {
            deps.entry(to).or_default().push(from);
        }
    }
    for list in deps.values_mut() {
        list.sort_by(|&a, &b| nodes[a].cmp(&nodes[b]));
    }
    // Every remaining node has a remaining dependency or leads to one; walking dependencies from
    // any of them must revisit a node.
    let Some(mut current) = left
        .iter()
        .copied()
        .min_by(|&a, &b| nodes[a].cmp(&nodes[b]))
    else {
        return Vec::new();
    };
    let mut path: Vec<usize> = Vec::new();
    let mut seen: HashMap<usize, usize> = HashMap::new();
    loop {
        if let Some(&start) = seen.get(&current) {
            let mut cycle: Vec<usize> = path[start..].to_vec();
            let min = (0..cycle.len())
                .min_by(|&a, &b| nodes[cycle[a]].cmp(&nodes[cycle[b]]))
                .unwrap_or(0);
            cycle.rotate_left(min);
            return cycle.into_iter().map(|i| nodes[i].clone()).collect();
        }
        seen.insert(current, path.len());
        path.push(current);
        match deps.get(&current).and_then(|d| d.first()) {
            Some(&next) => current = next,
            None => return path.into_iter().map(|i| nodes[i].clone()).collect(),
        }
    }
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_dot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use crate::refs::Kind;

    #[test]
    fn topo_order_puts_dependencies_first_and_breaks_ties_by_address() {
        let mut s = Stack::new("t", "r");
        let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
        s.add("b", Subnet::public(&vpc, "10.0.2.0/24", "z"));
        s.add("a", Subnet::public(&vpc, "10.0.1.0/24", "z"));
        let order: Vec<String> = Graph::from_stack(&s)
            .topo_order()
            .unwrap()
            .iter()
            .map(Address::to_string)
            .collect();
        assert_eq!(order, ["ec2_vpc.main", "ec2_subnet.a", "ec2_subnet.b"]);
    }

    #[test]
    fn cycles_are_reported_from_the_smallest_address() {
        let mut s = Stack::new("t", "r");
        let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
        let a: crate::refs::Ref<SecurityGroup> = crate::refs::Ref::from_id("a");
        let b: crate::refs::Ref<SecurityGroup> = crate::refs::Ref::from_id("b");
        s.add(
            "b",
            SecurityGroup::new(&vpc, "b").ingress(Rule::tcp(1).from_group(&a)),
        );
        s.add(
            "a",
            SecurityGroup::new(&vpc, "a").ingress(Rule::tcp(1).from_group(&b)),
        );
        let err = Graph::from_stack(&s).topo_order().unwrap_err();
        assert_eq!(
            err.cycle,
            [
                Address::new(Kind::SecurityGroup, "a"),
                Address::new(Kind::SecurityGroup, "b")
            ]
        );
        assert_eq!(
            err.to_string(),
            "dependency cycle: ec2_security_group.a -> ec2_security_group.b -> ec2_security_group.a"
        );
    }

    #[test]
    fn dot_and_mermaid_name_every_edge() {
        let mut s = Stack::new("t", "r");
        let vpc = s.add("main", Vpc::new("10.0.0.0/16"));
        s.add("a", Subnet::public(&vpc, "10.0.1.0/24", "z"));
        let g = Graph::from_stack(&s);
        assert!(g.to_dot().contains("\"ec2_subnet.a\" -> \"ec2_vpc.main\";"));
        assert!(g.to_mermaid().contains("n1 --> n0"));
    }
}
