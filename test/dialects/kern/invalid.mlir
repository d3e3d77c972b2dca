// RUN: %qopt-opt %s -split-input-file -verify-diagnostics

func.func @unknown(%x: tensor<4xf32>) {
  // expected-error@+1 {{'kern.launch' op names unknown kernel family 'no_such_kernel'}}
  %0 = kern.launch "no_such_kernel"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @arity(%x: tensor<4xf32>) {
  // expected-error@+1 {{'kern.launch' op kernel 'binary' takes 2 to 2 operands, got 1}}
  %0 = kern.launch "binary"(%x) {attrs = {fn = "add"}} : (tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @results(%x: tensor<4xf32>) {
  // expected-error@+1 {{'kern.launch' op kernel 'unary' has 1 results, got 2}}
  %0:2 = kern.launch "unary"(%x) {attrs = {fn = "exp"}} : (tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @required(%x: tensor<4xf32>) {
  %n = kern.absent
  // expected-error@+1 {{'kern.launch' op operand 1 of kernel 'binary' is required}}
  %0 = kern.launch "binary"(%x, %n) {attrs = {fn = "add"}} : (tensor<4xf32>, none) -> tensor<4xf32>
  return
}

// -----

func.func @plan(%x: tensor<4xf32>) {
  // expected-error@+1 {{'kern.launch' op expects one offset per result}}
  %0 = kern.launch "unary"(%x) {attrs = {fn = "exp"}, offsets = array<i64: 0, 64>} : (tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @short_weight() -> tensor<2x2xi64> {
  // expected-error@+1 {{'kern.weight' op resource 'w' holds 8 bytes, but 'tensor<2x2xi64>' needs 32}}
  %0 = kern.weight dense_resource<w> : tensor<2x2xi64>
  return %0 : tensor<2x2xi64>
}

{-#
  dialect_resources: {
    builtin: {
      w: "0x080000000100000000000000"
    }
  }
#-}

// -----

func.func @in_place_type(%len: tensor<1xi64>, %x: tensor<4xi64>) {
  // expected-error@+1 {{'kern.launch' op kernel 'kv_advance' updates operand 0 in place: its one result must have that operand's type}}
  %0 = kern.launch "kv_advance"(%len, %x) : (tensor<1xi64>, tensor<4xi64>) -> tensor<2xi64>
  return
}

// -----

func.func @empty_variant(%x: tensor<4xf32>) {
  // expected-error@+1 {{'kern.launch' op has an empty variant name (leave `variant` out for the default implementation)}}
  %0 = kern.launch "unary"(%x) {attrs = {fn = "exp"}, variant = ""} : (tensor<4xf32>) -> tensor<4xf32>
  return
}
