// HAND-WRITTEN stand-in for the google-protobuf message classes that `protoc --js_out=
// import_style=commonjs,binary` emits for protos/user_service.proto: the same classes, getters,
// setters, serializeBinary() and static deserializeBinary(), so code that uses them reads as it
// would with the generator's output. The wire encoding uses @bufbuild/protobuf's BinaryWriter
// and BinaryReader instead of google-protobuf, which this repository does not install (protoc's
// JavaScript generator is not in the protoc that Debian ships either). See ../README.md.
'use strict';
var wire = require('@bufbuild/protobuf/wire');

class QueryBasicInfoByIDRequest {
  constructor() {
    this.id_ = 0;
  }
  getId() {
    return this.id_;
  }
  setId(value) {
    this.id_ = value;
    return this;
  }
  toObject() {
    return { id: this.id_ };
  }
  serializeBinary() {
    var writer = new wire.BinaryWriter();
    if (this.id_ !== 0) writer.uint32(8).int64(this.id_);
    return writer.finish();
  }
  static deserializeBinary(bytes) {
    var reader = new wire.BinaryReader(bytes);
    var message = new QueryBasicInfoByIDRequest();
    while (reader.pos < reader.len) {
      var [field, type] = reader.tag();
      if (field === 1) message.setId(Number(reader.int64()));
      else reader.skip(type);
    }
    return message;
  }
}

class BasicInfo {
  constructor() {
    this.id_ = 0;
    this.name_ = '';
    this.email_ = '';
  }
  getId() {
    return this.id_;
  }
  setId(value) {
    this.id_ = value;
    return this;
  }
  getName() {
    return this.name_;
  }
  setName(value) {
    this.name_ = value;
    return this;
  }
  getEmail() {
    return this.email_;
  }
  setEmail(value) {
    this.email_ = value;
    return this;
  }
  toObject() {
    return { id: this.id_, name: this.name_, email: this.email_ };
  }
  serializeBinary() {
    var writer = new wire.BinaryWriter();
    if (this.id_ !== 0) writer.uint32(8).int64(this.id_);
    if (this.name_ !== '') writer.uint32(18).string(this.name_);
    if (this.email_ !== '') writer.uint32(26).string(this.email_);
    return writer.finish();
  }
  static deserializeBinary(bytes) {
    var reader = new wire.BinaryReader(bytes);
    var message = new BasicInfo();
    while (reader.pos < reader.len) {
      var [field, type] = reader.tag();
      if (field === 1) message.setId(Number(reader.int64()));
      else if (field === 2) message.setName(reader.string());
      else if (field === 3) message.setEmail(reader.string());
      else reader.skip(type);
    }
    return message;
  }
}

exports.QueryBasicInfoByIDRequest = QueryBasicInfoByIDRequest;
exports.BasicInfo = BasicInfo;
