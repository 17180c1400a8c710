/* The Socket.IO text codec's common shapes in C: optional, same results as packet.py.
 *
 * decode(text): the Packet of an EVENT or ACK without attachments (`2[`, `212[`, `3/chat,5[`), parsed in one
 * pass with the standard library's JSON scanner, as packet.decode_text's fast path does. Any
 * other text, and any text that is invalid, gives None: the Python decoder then decides (and
 * says what is wrong), so errors come from one place.
 *
 * frame(head, data, ack_id): `head` + the ack id + data as JSON, written by orjson and checked
 * as _json.dumps checks it (marshal accepts only the core types; no `null`, `e-` or `0.0000`,
 * where the standard library could write otherwise). None when a check fails: the Python
 * encoder then writes the packet.
 *
 * configure(...) hands in the Python objects both use; nothing runs before it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <marshal.h>
#include <string.h>

static PyObject *scan_fn;       /* _json.scan: (text, pos) -> (value, end) */
static PyObject *packet_type;   /* packet.Packet, a tuple subclass */
static PyObject *event_kind;    /* PacketType.EVENT */
static PyObject *ack_kind;      /* PacketType.ACK */
static PyObject *reserved;      /* RESERVED_EVENTS, a frozenset */
static PyObject *orjson_dumps;  /* orjson.dumps, or None */
static PyObject *orjson_option; /* its option flags */
static PyObject *root;          /* "/" */
static PyObject *option_kwnames; /* ("option",) */
static long long max_ack_id;
static Py_ssize_t max_digits;

#define MARSHAL_SMALL_VERSION 2
#define MARSHAL_LARGE_VERSION 4
#define MARSHAL_LARGE_TEXT 2048

static void
replace(PyObject **slot, PyObject *value)
{
    Py_XINCREF(value);
    Py_XSETREF(*slot, value);
}

static PyObject *
configure(PyObject *self, PyObject *args)
{
    PyObject *scan, *packet, *event, *ack, *names, *dumps, *option;
    long long max_id;
    Py_ssize_t digits;
    if (!PyArg_ParseTuple(args, "OOOOOOOLn", &scan, &packet, &event, &ack, &names,
                          &dumps, &option, &max_id, &digits))
        return NULL;
    if (!PyType_Check(packet) || !PyType_IsSubtype((PyTypeObject *)packet, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "Packet must be a tuple subclass");
        return NULL;
    }
    if (!PyFrozenSet_CheckExact(names)) {
        PyErr_SetString(PyExc_TypeError, "the reserved event names must be a frozenset");
        return NULL;
    }
    if (digits < 1 || digits > 17) { /* max_digits + 1 digits must fit a long long */
        PyErr_SetString(PyExc_ValueError, "max_digits must be 1..17");
        return NULL;
    }
    replace(&scan_fn, scan);
    replace(&packet_type, packet);
    replace(&event_kind, event);
    replace(&ack_kind, ack);
    replace(&reserved, names);
    replace(&orjson_dumps, dumps);
    replace(&orjson_option, option);
    max_ack_id = max_id;
    max_digits = digits;
    Py_RETURN_NONE;
}

/* A tuple of a tuple subclass, as tuple.__new__(cls, items) makes it (steals the items). */
static PyObject *
new_tuple(PyObject *type, PyObject **items, Py_ssize_t n)
{
    PyObject *result = ((PyTypeObject *)type)->tp_alloc((PyTypeObject *)type, n);
    if (result == NULL) {
        for (Py_ssize_t i = 0; i < n; i++)
            Py_DECREF(items[i]);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        PyTuple_SET_ITEM(result, i, items[i]);
    return result;
}

static int
valid_event_name(PyObject *data)
{
    if (PyList_GET_SIZE(data) == 0)
        return 0;
    PyObject *name = PyList_GET_ITEM(data, 0);
    if (PyUnicode_CheckExact(name)) {
        int found = PySet_Contains(reserved, name);
        if (found < 0) {
            PyErr_Clear();
            return 0;
        }
        return !found;
    }
    return PyLong_CheckExact(name) || PyFloat_CheckExact(name);
}

static PyObject *
decode(PyObject *self, PyObject *text)
{
    if (scan_fn == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_speedups.configure() was not called");
        return NULL;
    }
    if (!PyUnicode_CheckExact(text) || PyUnicode_READY(text) < 0) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    Py_ssize_t end = PyUnicode_GET_LENGTH(text);
    if (end < 2)
        Py_RETURN_NONE;
    int kind = PyUnicode_KIND(text);
    const void *chars = PyUnicode_DATA(text);
    Py_UCS4 head = PyUnicode_READ(kind, chars, 0);
    if (head != '2' && head != '3')
        Py_RETURN_NONE;

    Py_ssize_t pos = 1;
    Py_ssize_t ns_end = -1; /* the namespace is text[1:ns_end], or "/" */
    if (PyUnicode_READ(kind, chars, 1) == '/') {
        Py_ssize_t comma = PyUnicode_FindChar(text, ',', 2, end, 1);
        if (comma < 0) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        ns_end = comma;
        pos = comma + 1;
    }
    /* The ack id: up to max_digits ASCII digits, then the array. */
    Py_ssize_t bracket = pos;
    long long ack_id = 0;
    while (bracket < end && bracket - pos <= max_digits) {
        Py_UCS4 c = PyUnicode_READ(kind, chars, bracket);
        if (c == '[')
            break;
        if (c < '0' || c > '9')
            Py_RETURN_NONE;
        ack_id = ack_id * 10 + (long long)(c - '0');
        bracket++;
    }
    if (bracket >= end || bracket - pos > max_digits || PyUnicode_READ(kind, chars, bracket) != '[')
        Py_RETURN_NONE;
    int has_id = bracket > pos;
    if (has_id && ack_id > max_ack_id)
        Py_RETURN_NONE;

    PyObject *call_args[2];
    call_args[0] = text;
    call_args[1] = PyLong_FromSsize_t(bracket);
    if (call_args[1] == NULL)
        return NULL;
    PyObject *scanned = PyObject_Vectorcall(scan_fn, call_args, 2, NULL);
    Py_DECREF(call_args[1]);
    if (scanned == NULL) {
        /* Invalid JSON (or nesting too deep): the Python decoder raises the protocol error. */
        if (!PyErr_ExceptionMatches(PyExc_Exception)) /* not KeyboardInterrupt and the like */
            return NULL;
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (!PyTuple_CheckExact(scanned) || PyTuple_GET_SIZE(scanned) != 2 ||
        !PyList_CheckExact(PyTuple_GET_ITEM(scanned, 0))) {
        Py_DECREF(scanned);
        Py_RETURN_NONE;
    }
    Py_ssize_t stop = PyLong_AsSsize_t(PyTuple_GET_ITEM(scanned, 1));
    if (stop != end) { /* whitespace or junk after the array (or an error reading stop) */
        PyErr_Clear();
        Py_DECREF(scanned);
        Py_RETURN_NONE;
    }
    PyObject *data = PyTuple_GET_ITEM(scanned, 0);
    Py_INCREF(data);
    Py_DECREF(scanned);
    if (head == '2' && !valid_event_name(data)) {
        Py_DECREF(data);
        Py_RETURN_NONE;
    }

    PyObject *items[4];
    items[0] = head == '2' ? event_kind : ack_kind;
    Py_INCREF(items[0]);
    if (ns_end < 0) {
        items[1] = root;
        Py_INCREF(root);
    } else {
        items[1] = PyUnicode_Substring(text, 1, ns_end);
        if (items[1] == NULL) {
            Py_DECREF(items[0]);
            Py_DECREF(data);
            return NULL;
        }
    }
    items[2] = data;
    if (has_id) {
        items[3] = PyLong_FromLongLong(ack_id);
        if (items[3] == NULL) {
            Py_DECREF(items[0]);
            Py_DECREF(items[1]);
            Py_DECREF(data);
            return NULL;
        }
    } else {
        items[3] = Py_None;
        Py_INCREF(Py_None);
    }
    return new_tuple(packet_type, items, 4);
}

/* What _json.dumps checks before trusting orjson: the standard library would write it the same. */
static int
orjson_agrees(const char *json, Py_ssize_t size, PyObject *data)
{
    if (memmem(json, (size_t)size, "null", 4) != NULL || memmem(json, (size_t)size, "e-", 2) != NULL ||
        memmem(json, (size_t)size, "0.0000", 6) != NULL)
        return 0;
    PyObject *marshalled = PyMarshal_WriteObjectToString(
        data, size > MARSHAL_LARGE_TEXT ? MARSHAL_LARGE_VERSION : MARSHAL_SMALL_VERSION);
    if (marshalled == NULL)
        return -1;
    Py_DECREF(marshalled);
    return 1;
}

static PyObject *
frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "frame(head, data, ack_id)");
        return NULL;
    }
    PyObject *head = args[0], *data = args[1], *ack = args[2];
    if (orjson_dumps == NULL || orjson_dumps == Py_None || !PyUnicode_CheckExact(head) ||
        !PyUnicode_IS_ASCII(head))
        Py_RETURN_NONE;
    char id_text[24];
    int id_size = 0;
    if (ack != Py_None) {
        if (!PyLong_CheckExact(ack))
            Py_RETURN_NONE;
        long long id = PyLong_AsLongLong(ack);
        if (id < 0 || (id == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        id_size = snprintf(id_text, sizeof id_text, "%lld", id);
    }
    PyObject *call_args[2] = {data, orjson_option};
    PyObject *json = PyObject_Vectorcall(orjson_dumps, call_args, 1, option_kwnames);
    if (json == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            return NULL;
        PyErr_Clear(); /* bytes, a surrogate, a big int, a cycle...: the Python encoder's */
        Py_RETURN_NONE;
    }
    if (!PyBytes_CheckExact(json)) {
        Py_DECREF(json);
        Py_RETURN_NONE;
    }
    const char *body = PyBytes_AS_STRING(json);
    Py_ssize_t body_size = PyBytes_GET_SIZE(json);
    int agrees = orjson_agrees(body, body_size, data);
    if (agrees <= 0) {
        Py_DECREF(json);
        if (agrees < 0) {
            if (!PyErr_ExceptionMatches(PyExc_Exception))
                return NULL;
            PyErr_Clear();
        }
        Py_RETURN_NONE;
    }
    Py_ssize_t head_size = PyUnicode_GET_LENGTH(head);
    Py_ssize_t total = head_size + id_size + body_size;
    char small[512];
    char *buffer = total <= (Py_ssize_t)sizeof small ? small : PyMem_Malloc((size_t)total);
    if (buffer == NULL) {
        Py_DECREF(json);
        return PyErr_NoMemory();
    }
    memcpy(buffer, PyUnicode_DATA(head), (size_t)head_size);
    memcpy(buffer + head_size, id_text, (size_t)id_size);
    memcpy(buffer + head_size + id_size, body, (size_t)body_size);
    Py_DECREF(json);
    /* orjson writes valid UTF-8 (it refuses lone surrogates). */
    PyObject *result = PyUnicode_DecodeUTF8(buffer, total, "strict");
    if (buffer != small)
        PyMem_Free(buffer);
    return result;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS, "Hand in the Python objects decode and frame use."},
    {"decode", decode, METH_O, "decode(text) -> Packet | None: a common EVENT or ACK, else None."},
    {"frame", (PyCFunction)(void (*)(void))frame, METH_FASTCALL,
     "frame(head, data, ack_id) -> str | None: head + id + orjson's JSON where it agrees, else None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_speedups",
    .m_doc = "The Socket.IO text codec's common shapes in C.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    root = PyUnicode_InternFromString("/");
    PyObject *option = PyUnicode_InternFromString("option");
    if (root == NULL || option == NULL)
        return NULL;
    option_kwnames = PyTuple_Pack(1, option);
    Py_DECREF(option);
    if (option_kwnames == NULL)
        return NULL;
    return PyModule_Create(&module);
}
