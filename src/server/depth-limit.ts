/**
 * A validation rule that rejects operations nested deeper than a limit (fragments are followed),
 * so a cyclic path such as model → inputs → model → … cannot make one request arbitrarily costly.
 * Introspection (`__schema`, `__type`) has its own limit, INTROSPECTION_MAX_DEPTH: the standard
 * introspection query (graphql's getIntrospectionQuery(), what GraphiQL and codegen send) nests 15
 * deep; what it costs is bounded by the query cost limit (query-limits.ts).
 */
import { GraphQLError, Kind, type ASTVisitor, type FragmentDefinitionNode, type SelectionSetNode, type ValidationContext } from 'graphql';

export const INTROSPECTION_MAX_DEPTH = 20;

export function depthLimit(maxDepth: number): (context: ValidationContext) => ASTVisitor {
  return (context) => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const def of context.getDocument().definitions) {
      if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
    }
    const limit = Math.max(maxDepth, INTROSPECTION_MAX_DEPTH);
    /** Depth of the selection; an introspection subtree counts only into `introspection.deepest`. */
    const depthOf = (set: SelectionSetNode, visited: Set<string>, introspection: { deepest: number }, inIntrospection: boolean): number => {
      let deepest = 0;
      for (const selection of set.selections) {
        if (selection.kind === Kind.FIELD) {
          const starts = !inIntrospection && selection.name.value.startsWith('__');
          const below = selection.selectionSet ? depthOf(selection.selectionSet, visited, introspection, inIntrospection || starts) : 0;
          if (starts) introspection.deepest = Math.max(introspection.deepest, 1 + below);
          else deepest = Math.max(deepest, 1 + below);
        } else if (selection.kind === Kind.INLINE_FRAGMENT) {
          deepest = Math.max(deepest, depthOf(selection.selectionSet, visited, introspection, inIntrospection));
        } else {
          const name = selection.name.value;
          const fragment = fragments.get(name);
          if (!fragment || visited.has(name)) continue; // unknown or cyclic: other rules report it
          deepest = Math.max(deepest, depthOf(fragment.selectionSet, new Set([...visited, name]), introspection, inIntrospection));
        }
        if (deepest > limit || introspection.deepest > limit) break; // deep enough to reject; stop walking
      }
      return deepest;
    };
    return {
      OperationDefinition(node) {
        const introspection = { deepest: 0 };
        const depth = depthOf(node.selectionSet, new Set(), introspection, false);
        if (depth > maxDepth) {
          context.reportError(new GraphQLError(`query depth ${depth} exceeds the limit of ${maxDepth}`, { nodes: [node] }));
        } else if (introspection.deepest > INTROSPECTION_MAX_DEPTH) {
          context.reportError(
            new GraphQLError(`introspection depth ${introspection.deepest} exceeds the limit of ${INTROSPECTION_MAX_DEPTH}`, { nodes: [node] }),
          );
        }
      },
    };
  };
}
