/* Greedy decoding through qrt's C API alone: feeds the whole sequence each step (input_ids, and position_ids or
 * attention_mask if the model has them) and prints the tokens with the model's embedded tokenizer. A model with
 * state (its KV cache) is fed only the new token after the first step: the first step runs the general entry by
 * name (qrt_session_run_entry), the others qrt_session_run, which picks the one-token entry.
 * Usage: greedy MODEL.bin STEPS */
#include "qrt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check(qrt_status st) {
  if (!st)
    return 1;
  fprintf(stderr, "greedy: %s\n", qrt_status_message(st));
  qrt_status_free(st);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: greedy MODEL.bin STEPS\n");
    return 2;
  }
  int steps = atoi(argv[2]);
  qrt_model *model = NULL;
  qrt_session *session = NULL;
  qrt_tokenizer *tok = NULL;
  if (!check(qrt_model_load(argv[1], &model)) || !check(qrt_session_create(model, NULL, &session)) ||
      !check(qrt_tokenizer_create(model, &tok)))
    return 1;
  int64_t *ids = malloc(sizeof(int64_t) * (size_t)(steps + 1)), *aux = malloc(sizeof(int64_t) * (size_t)(steps + 1));
  const int stateful = qrt_model_state_bytes(model) > 0;
  int64_t n = 1;
  ids[0] = 1; /* BOS */
  for (int s = 0; s < steps; ++s) {
    const int64_t first = stateful ? n - 1 : 0; /* positions already in the cache */
    int64_t shape[2] = {1, n - first};
    for (int32_t i = 0; i < qrt_model_num_inputs(model); ++i) {
      const char *name = qrt_model_input_name(model, i);
      for (int64_t j = first; j < n; ++j)
        aux[j - first] = strcmp(name, "position_ids") == 0 ? j : 1;
      if (!check(qrt_session_set_input(session, name, QRT_INT64, shape, 2,
                                       strcmp(name, "input_ids") == 0 ? ids + first : aux)))
        return 1;
    }
    qrt_tensor logits;
    qrt_status run = s == 0 && stateful ? qrt_session_run_entry(session, qrt_model_entry_name(model, 0))
                                        : qrt_session_run(session);
    if (!check(run) || !check(qrt_session_get_output(session, "logits", &logits)))
      return 1;
    const int64_t vocab = logits.shape[2];
    const float *last = (const float *)logits.data + (n - first - 1) * vocab;
    int32_t best = 0;
    for (int64_t v = 1; v < vocab; ++v)
      if (last[v] > last[best])
        best = (int32_t)v;
    fputs(qrt_tokenizer_decode(tok, (int32_t)ids[n - 1], best), stdout);
    ids[n++] = best;
  }
  fputs("\n", stdout);
  free(ids);
  free(aux);
  qrt_tokenizer_free(tok);
  qrt_session_free(session);
  qrt_model_free(model);
  return 0;
}
